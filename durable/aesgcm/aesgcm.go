// Package aesgcm is a backend.Codec that encrypts payloads at rest with
// AES-256-GCM from the standard library.
//
// Each payload names the key that sealed it, so keys rotate: a Codec
// seals with its current key and opens with the current key or any older
// one it was given. To rotate, give every process the new key as current
// and the old one as older; drop the old key once no stored payload needs
// it (a run's history lives as long as the run and its retention).
//
// A sealed payload is
//
//	version (1 byte, 1) | key id length (1 byte) | key id | nonce (12 bytes) | ciphertext and tag
//
// The version byte and key id are authenticated as additional data; the
// nonce is random (crypto/rand) for each payload. With a random 96-bit
// nonce, seal fewer than 2^32 payloads with one key, then rotate.
package aesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Name is the codec name recorded with each payload a Codec sealed. It
// stays the same across key rotations.
const Name = "aes-gcm"

// version is the format of sealed payloads written by this code.
const version = 1

const (
	keySize   = 32 // AES-256
	nonceSize = 12
	tagSize   = 16
)

// Errors a Codec's Decode returns, wrapped with the key id. Neither is
// helped by a retry: the payload stays unreadable until the process is
// given the key (ErrUnknownKey) or the payload is restored (ErrTampered).
var (
	// ErrUnknownKey means the payload was sealed with a key the Codec was
	// not given.
	ErrUnknownKey = errors.New("aesgcm: unknown key")
	// ErrTampered means the payload is not one a Codec sealed, was cut or
	// altered, or was sealed with a different key under the same id.
	ErrTampered = errors.New("aesgcm: payload altered or not sealed by this codec")
)

// Key is an AES-256 key and the id payloads sealed with it carry.
type Key struct {
	// ID names the key in each payload: 1 to 255 bytes of letters,
	// digits, '-', '_' and '.'. Never reuse an id for another key.
	ID string
	// Secret is the 32-byte key.
	Secret []byte
}

// Codec seals payloads with its current key and opens payloads sealed with
// any of its keys. It is safe for concurrent use.
type Codec struct {
	current string
	aeads   map[string]cipher.AEAD
}

var _ backend.Codec = (*Codec)(nil)

// New returns a Codec that seals with current and opens payloads sealed
// with current or any of older. Key ids must be valid and distinct, and
// secrets 32 bytes long.
func New(current Key, older ...Key) (*Codec, error) {
	c := &Codec{current: current.ID, aeads: make(map[string]cipher.AEAD, 1+len(older))}
	for _, k := range append([]Key{current}, older...) {
		if err := checkID(k.ID); err != nil {
			return nil, err
		}
		if _, dup := c.aeads[k.ID]; dup {
			return nil, fmt.Errorf("aesgcm: key id %q given twice", k.ID)
		}
		if len(k.Secret) != keySize {
			return nil, fmt.Errorf("aesgcm: key %q is %d bytes, want %d", k.ID, len(k.Secret), keySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("aesgcm: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("aesgcm: key %q: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
	}
	return c, nil
}

func checkID(id string) error {
	if id == "" || len(id) > 255 {
		return fmt.Errorf("aesgcm: key id %q must be 1 to 255 bytes", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) {
			return fmt.Errorf("aesgcm: key id %q: only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// Name returns Name.
func (c *Codec) Name() string { return Name }

// Current returns the id of the key new payloads are sealed with.
func (c *Codec) Current() string { return c.current }

// Encode seals payload with the current key and a fresh random nonce.
func (c *Codec) Encode(payload []byte) ([]byte, error) {
	aead := c.aeads[c.current]
	hdr := 2 + len(c.current)
	out := make([]byte, hdr+nonceSize, hdr+nonceSize+len(payload)+tagSize)
	out[0], out[1] = version, byte(len(c.current))
	copy(out[2:], c.current)
	nonce := out[hdr : hdr+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("aesgcm: nonce: %w", err)
	}
	return aead.Seal(out, nonce, payload, out[:hdr]), nil
}

// Decode opens a payload sealed by Encode with any of the Codec's keys. A
// payload sealed with a key it was not given is an error wrapping
// ErrUnknownKey; a payload altered or not sealed by a Codec, one wrapping
// ErrTampered.
func (c *Codec) Decode(data []byte) ([]byte, error) {
	id, err := KeyID(data)
	if err != nil {
		return nil, err
	}
	aead, ok := c.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, id)
	}
	hdr := 2 + len(id)
	if len(data) < hdr+nonceSize+tagSize {
		return nil, fmt.Errorf("%w: key %q: %d bytes is too short", ErrTampered, id, len(data))
	}
	plain, err := aead.Open(nil, data[hdr:hdr+nonceSize], data[hdr+nonceSize:], data[:hdr])
	if err != nil {
		return nil, fmt.Errorf("%w: key %q", ErrTampered, id)
	}
	return plain, nil
}

// KeyID returns the id of the key that sealed data, without a key: what a
// tool that cannot open a payload shows instead of it. The id is not
// authenticated until the payload is opened.
func KeyID(data []byte) (string, error) {
	if len(data) < 2 {
		return "", fmt.Errorf("%w: %d bytes is too short", ErrTampered, len(data))
	}
	if data[0] != version {
		return "", fmt.Errorf("%w: format version %d, want %d", ErrTampered, data[0], version)
	}
	n := int(data[1])
	if n == 0 || len(data) < 2+n {
		return "", fmt.Errorf("%w: bad key id length %d", ErrTampered, n)
	}
	id := string(data[2 : 2+n])
	if checkID(id) != nil {
		return "", fmt.Errorf("%w: bad key id %q", ErrTampered, id)
	}
	return id, nil
}
