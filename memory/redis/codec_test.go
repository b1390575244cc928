package redis

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/memory"
)

func sample() memory.Item {
	return memory.Item{Namespace: "user/42", Key: "coffee", Text: "Drinks coffee black. ☕",
		Vector:    []float32{0.25, -1, 3.5e-20, 7e30},
		Metadata:  map[string]string{"kind": "preference", "source": "chat", "": "empty key"},
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), UpdatedAt: time.Date(2025, 6, 7, 8, 9, 10, 11, time.UTC)}
}

func TestCodecRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	items := []memory.Item{sample(), {Namespace: "n", Key: "k", Text: "t", Vector: []float32{0}, CreatedAt: time.Unix(0, 0).UTC(), UpdatedAt: time.Unix(0, 1).UTC()}}
	for range 200 {
		it := memory.Item{Namespace: "n", Key: "k", Text: strings.Repeat("é", 1+rng.IntN(100)),
			Vector:    make([]float32, 1+rng.IntN(300)),
			CreatedAt: time.Unix(0, rng.Int64()).UTC(), UpdatedAt: time.Unix(0, -rng.Int64()).UTC()}
		for i := range it.Vector {
			it.Vector[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(60)-30)))
		}
		if n := rng.IntN(memory.MaxMetadata + 1); n > 0 {
			it.Metadata = map[string]string{}
			for range n {
				it.Metadata[strings.Repeat("k", rng.IntN(20))+string(rune('a'+rng.IntN(26)))] = strings.Repeat("v", rng.IntN(50))
			}
		}
		items = append(items, it)
	}
	for i, it := range items {
		b := encode(it)
		got, err := decode(it.Namespace, it.Key, string(b))
		require.NoError(t, err, "item %d", i)
		assert.Equal(t, it, got, "item %d", i)
		assert.Equal(t, b, encode(got), "item %d: encoding is canonical", i)
	}
	assert.Len(t, encode(memory.Item{Namespace: "n", Key: "k", Text: "t", Vector: make([]float32, 256)}), headerLen+2+1024+2+1,
		"a vector of 256 numbers takes 4 bytes a number")
}

// corruptions are values that must not decode: cut short, garbage, wrong
// lengths, and values that break the limits an item is held to.
func corruptions() map[string]string {
	good := string(encode(sample()))
	vec := string(encode(memory.Item{Text: "t", Vector: []float32{1, 2}}))
	withVec := func(v ...float32) string {
		b := []byte(vec)
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[headerLen+1+4*i:], math.Float32bits(x))
		}
		return string(b)
	}
	header := vec[:headerLen]
	return map[string]string{
		"empty":                  "",
		"one byte":               "\x01",
		"header only":            header,
		"cut in the vector":      vec[:headerLen+3],
		"cut in the text":        good[:len(good)-40],
		"cut by one byte":        good[:len(good)-1],
		"one byte more":          good + "x",
		"format 2":               "\x02" + good[1:],
		"format 0":               "\x00" + good[1:],
		"garbage":                "not an item at all, just some text that someone SET",
		"JSON":                   `{"text":"t","vector":[1,2]}`,
		"no vector":              header + "\x00\x01t\x00",
		"vector too long":        header + "\x81\x40" + strings.Repeat("\x00", 4*8193) + "\x01t\x00",
		"vector length overflow": header + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
		"vector length 11 bytes": header + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
		"vector one byte short":  header + "\x02" + strings.Repeat("\x00", 7) + "\x01t\x00",
		"vector bytes not 4n":    header + "\x01" + strings.Repeat("\x00", 5) + "\x01t\x00",
		"NaN":                    withVec(1, float32(math.NaN())),
		"Inf":                    withVec(float32(math.Inf(1)), 1),
		"empty text":             header + "\x01" + strings.Repeat("\x00", 4) + "\x00\x00",
		"text not UTF-8":         header + "\x01" + strings.Repeat("\x00", 4) + "\x01\xff\x00",
		"text too long":          header + "\x01" + strings.Repeat("\x00", 4) + "\x81\x80\x01" + strings.Repeat("t", 16385) + "\x00",
		"text length past end":   header + "\x01" + strings.Repeat("\x00", 4) + "\x05ab\x00",
		"too much metadata":      header + "\x01" + strings.Repeat("\x00", 4) + "\x01t\x21",
		"metadata cut":           header + "\x01" + strings.Repeat("\x00", 4) + "\x01t\x01\x01k",
		"metadata out of order":  header + "\x01" + strings.Repeat("\x00", 4) + "\x01t\x02\x01b\x00\x01a\x00",
		"metadata key twice":     header + "\x01" + strings.Repeat("\x00", 4) + "\x01t\x02\x01a\x00\x01a\x00",
		"metadata not UTF-8":     header + "\x01" + strings.Repeat("\x00", 4) + "\x01t\x01\x01a\x01\xc3",
	}
}

func TestDecodeCorrupt(t *testing.T) {
	for name, value := range corruptions() {
		_, err := decode("ns", "k", value)
		assert.Error(t, err, name)
	}
	_, err := decode("ns", "", string(encode(sample())))
	assert.Error(t, err, "an empty key")
}

// FuzzDecode feeds arbitrary values to the decoder. It must return an
// error or an item, never panic; an item it returns must be valid, and
// encode back to the same bytes (the encoding is canonical).
func FuzzDecode(f *testing.F) {
	f.Add(string(encode(sample())))
	f.Add(string(encode(memory.Item{Text: "t", Vector: []float32{1}})))
	for _, value := range corruptions() {
		f.Add(value)
	}
	f.Fuzz(func(t *testing.T, value string) {
		it, err := decode("ns", "k", value)
		if err != nil {
			return
		}
		require.NoError(t, memory.ValidItem(it))
		require.Equal(t, value, string(encode(it)), "a decoded item encodes back to other bytes")
	})
}
