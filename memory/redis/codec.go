package redis

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairn-dev/cairn/memory"
)

// An item is stored as the value of its key in the namespace's items hash,
// in this binary form (the key and namespace are not in it):
//
//	format      1 byte, 1
//	created_at  8 bytes, Unix nanoseconds, little-endian int64
//	updated_at  8 bytes, the same
//	dimension   uvarint, then the vector: that many little-endian float32s
//	text        uvarint length, then the text
//	metadata    uvarint count, then for each entry, in key order:
//	            uvarint length, key, uvarint length, value
//
// CreatedAt is at a fixed place, so that put.lua can carry it from the
// item it replaces. A vector of 256 numbers takes 1 KiB, against about
// 2.5 KiB as JSON.
const format = 1

// headerLen is the length of the format byte and the two times.
const headerLen = 17

// encode encodes an item that memory.ValidItem accepted.
func encode(it memory.Item) []byte {
	n := headerLen + binary.MaxVarintLen64*(3+2*len(it.Metadata)) + 4*len(it.Vector) + len(it.Text)
	for k, v := range it.Metadata {
		n += len(k) + len(v)
	}
	b := make([]byte, 0, n)
	b = append(b, format)
	b = binary.LittleEndian.AppendUint64(b, uint64(it.CreatedAt.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(it.UpdatedAt.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(it.Vector)))
	for _, x := range it.Vector {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	b = appendString(b, it.Text)
	b = binary.AppendUvarint(b, uint64(len(it.Metadata)))
	for _, k := range slices.Sorted(maps.Keys(it.Metadata)) {
		b = appendString(b, k)
		b = appendString(b, it.Metadata[k])
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decode decodes what encode encoded, as an item of namespace ns (which
// the caller checked) and key key. It checks everything else that
// memory.ValidItem checks, and that nothing is left over: a value that
// another program wrote, or that was cut short, is an error, never a
// panic and never a half item.
func decode(ns, key, b string) (memory.Item, error) {
	d := decoder{b: b}
	if len(b) < headerLen {
		return memory.Item{}, fmt.Errorf("%d bytes: shorter than the %d-byte header", len(b), headerLen)
	}
	if b[0] != format {
		return memory.Item{}, fmt.Errorf("format %d: want %d", b[0], format)
	}
	it := memory.Item{Namespace: ns, Key: key,
		CreatedAt: time.Unix(0, int64(uint64At(b, 1))).UTC(),
		UpdatedAt: time.Unix(0, int64(uint64At(b, 9))).UTC()}
	d.b = b[headerLen:]
	dim := d.uvarint("dimension", memory.MaxDimensions)
	if dim == 0 && d.err == nil {
		d.err = errors.New("no vector")
	}
	if vec := d.bytes("vector", 4*dim); d.err == nil {
		it.Vector = make([]float32, dim)
		for i := range it.Vector {
			bits := uint32At(vec, 4*i)
			if bits&0x7f800000 == 0x7f800000 { // exponent all ones: Inf or NaN
				d.err = fmt.Errorf("vector[%d] is not finite", i)
				break
			}
			it.Vector[i] = math.Float32frombits(bits)
		}
	}
	if it.Text = d.string("text", memory.MaxTextBytes); it.Text == "" && d.err == nil {
		d.err = errors.New("empty text")
	}
	if n := d.uvarint("metadata count", memory.MaxMetadata); n > 0 && d.err == nil {
		it.Metadata = make(map[string]string, n)
		prev := ""
		for i := range n {
			k := d.string("metadata key", memory.MaxMetadataBytes)
			v := d.string("metadata value", memory.MaxMetadataBytes)
			if d.err != nil {
				break
			}
			if i > 0 && strings.Compare(k, prev) <= 0 {
				d.err = fmt.Errorf("metadata key %q after %q: want them in order, once each", k, prev)
				break
			}
			it.Metadata[k], prev = v, k
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes left over", len(d.b))
	}
	if d.err != nil {
		return memory.Item{}, d.err
	}
	if err := memory.ValidKey(key); err != nil {
		return memory.Item{}, err
	}
	return it, nil
}

// decoder reads the parts of an encoded item; its first error stops it.
// It reads a string, as go-redis returns values, to copy nothing.
type decoder struct {
	b   string
	err error
}

// uvarint reads a number of at most max.
func (d *decoder) uvarint(what string, max int) int {
	if d.err != nil {
		return 0
	}
	v, n := uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%s: not a number", what)
		return 0
	}
	if v > uint64(max) {
		d.err = fmt.Errorf("%s %d: want at most %d", what, v, max)
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

// bytes reads n bytes.
func (d *decoder) bytes(what string, n int) string {
	if d.err != nil {
		return ""
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%s: %d bytes, want %d", what, len(d.b), n)
		return ""
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

// string reads a string of at most max bytes of UTF-8.
func (d *decoder) string(what string, max int) string {
	s := d.bytes(what, d.uvarint(what+" length", max))
	if d.err == nil && !utf8.ValidString(s) {
		d.err = fmt.Errorf("%s: not UTF-8", what)
	}
	return s
}

// uvarint is binary.Uvarint over a string.
func uvarint(s string) (uint64, int) {
	var v uint64
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -(i + 1) // overflow
			}
			return v | uint64(c)<<(7*i), i + 1
		}
		v |= uint64(c&0x7f) << (7 * i)
	}
	return 0, 0
}

// uint32At reads a little-endian uint32 at s[i:].
func uint32At(s string, i int) uint32 {
	_ = s[i+3]
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

// uint64At reads a little-endian uint64 at s[i:].
func uint64At(s string, i int) uint64 {
	return uint64(uint32At(s, i)) | uint64(uint32At(s, i+4))<<32
}
