package aesgcm_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/aesgcm"
	"github.com/cairn-dev/cairn/durable/backend"
)

func key(t testing.TB, id string) aesgcm.Key {
	t.Helper()
	secret := make([]byte, 32)
	_, err := rand.Read(secret)
	require.NoError(t, err)
	return aesgcm.Key{ID: id, Secret: secret}
}

func newCodec(t testing.TB, current aesgcm.Key, older ...aesgcm.Key) *aesgcm.Codec {
	t.Helper()
	c, err := aesgcm.New(current, older...)
	require.NoError(t, err)
	return c
}

func TestRoundTrip(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	for _, plain := range [][]byte{nil, {}, []byte(`"card 4242 4242 4242 4242"`), bytes.Repeat([]byte("x"), 1<<16)} {
		sealed, err := c.Encode(plain)
		require.NoError(t, err)
		assert.NotContains(t, string(sealed), "4242 4242")
		got, err := c.Decode(sealed)
		require.NoError(t, err)
		assert.Equal(t, len(plain), len(got))
		assert.True(t, bytes.Equal(plain, got))
		id, err := aesgcm.KeyID(sealed)
		require.NoError(t, err)
		assert.Equal(t, "k1", id)
	}
	assert.Equal(t, aesgcm.Name, c.Name())
}

func TestFormat(t *testing.T) {
	c := newCodec(t, key(t, "key-2026.12"))
	sealed, err := c.Encode([]byte("hello"))
	require.NoError(t, err)
	require.Len(t, sealed, 2+len("key-2026.12")+12+len("hello")+16)
	assert.Equal(t, byte(1), sealed[0], "version")
	assert.Equal(t, byte(len("key-2026.12")), sealed[1])
	assert.Equal(t, "key-2026.12", string(sealed[2:13]))
}

func TestNoncesDiffer(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	seen := map[string]bool{}
	for range 1000 {
		sealed, err := c.Encode([]byte("same"))
		require.NoError(t, err)
		nonce := string(sealed[4 : 4+12])
		require.False(t, seen[nonce], "nonce reused")
		seen[nonce] = true
	}
}

func TestRotation(t *testing.T) {
	k0, k1 := key(t, "k0"), key(t, "k1")
	old := newCodec(t, k0)
	sealedOld, err := old.Encode([]byte("before"))
	require.NoError(t, err)

	rotated := newCodec(t, k1, k0)
	assert.Equal(t, "k1", rotated.Current())
	got, err := rotated.Decode(sealedOld)
	require.NoError(t, err, "an old key still decrypts")
	assert.Equal(t, "before", string(got))

	sealedNew, err := rotated.Encode([]byte("after"))
	require.NoError(t, err)
	id, err := aesgcm.KeyID(sealedNew)
	require.NoError(t, err)
	assert.Equal(t, "k1", id, "new payloads use the new key")

	// A process not yet given the new key cannot read new payloads.
	_, err = old.Decode(sealedNew)
	require.ErrorIs(t, err, aesgcm.ErrUnknownKey)
	assert.Contains(t, err.Error(), `"k1"`)
}

func TestWrongKey(t *testing.T) {
	a := newCodec(t, key(t, "k1"))
	b := newCodec(t, key(t, "k1")) // same id, another secret
	sealed, err := a.Encode([]byte("secret"))
	require.NoError(t, err)
	_, err = b.Decode(sealed)
	require.ErrorIs(t, err, aesgcm.ErrTampered)
	assert.NotErrorIs(t, err, aesgcm.ErrUnknownKey)
}

func TestTampered(t *testing.T) {
	c := newCodec(t, key(t, "k1"), key(t, "k0"))
	sealed, err := c.Encode([]byte(`{"amount":500}`))
	require.NoError(t, err)
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		_, err := c.Decode(bad)
		require.Error(t, err, "byte %d flipped", i)
		// Flipping the key id may name another key it has (k1 -> k0) or none.
		assert.True(t, errorsIsAny(err, aesgcm.ErrTampered, aesgcm.ErrUnknownKey), "byte %d: %v", i, err)
	}
	for _, bad := range [][]byte{nil, {1}, sealed[:len(sealed)-1], sealed[:4+12]} {
		_, err := c.Decode(bad)
		require.ErrorIs(t, err, aesgcm.ErrTampered)
	}
	// The key id is authenticated: a payload relabelled with another
	// id fails, even when that id names the same secret.
	k := key(t, "k1")
	same := newCodec(t, k, aesgcm.Key{ID: "k2", Secret: k.Secret})
	sealed, err = same.Encode([]byte("x"))
	require.NoError(t, err)
	sealed[3] = '2'
	_, err = same.Decode(sealed)
	require.ErrorIs(t, err, aesgcm.ErrTampered)
}

func errorsIsAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func TestNewChecksKeys(t *testing.T) {
	k := key(t, "k1")
	for name, keys := range map[string][]aesgcm.Key{
		"short secret": {{ID: "k1", Secret: make([]byte, 16)}},
		"empty id":     {{ID: "", Secret: k.Secret}},
		"bad id":       {{ID: "k:1", Secret: k.Secret}},
		"duplicate id": {k, {ID: "k1", Secret: make([]byte, 32)}},
	} {
		_, err := aesgcm.New(keys[0], keys[1:]...)
		assert.Error(t, err, name)
	}
}

func TestParseKeys(t *testing.T) {
	k1, k0 := key(t, "k1"), key(t, "k0")
	env := fmt.Sprintf(" k1:%s , k0:%s", base64.StdEncoding.EncodeToString(k1.Secret), base64.RawURLEncoding.EncodeToString(k0.Secret))
	c, err := aesgcm.FromEnv(func(name string) string {
		if name == aesgcm.EnvKeys {
			return env
		}
		return ""
	})
	require.NoError(t, err)
	require.NotNil(t, c)
	assert.Equal(t, "k1", c.Current())
	sealed, err := newCodec(t, k0).Encode([]byte("old"))
	require.NoError(t, err)
	got, err := c.Decode(sealed)
	require.NoError(t, err)
	assert.Equal(t, "old", string(got))

	c, err = aesgcm.FromEnv(func(string) string { return "" })
	require.NoError(t, err)
	assert.Nil(t, c, "unset: no codec")

	secret := base64.StdEncoding.EncodeToString(k1.Secret)
	for _, bad := range []string{"k1", "k1:" + secret[:10], "k1:!!!", ",", "k1:" + secret + ",k1:" + secret} {
		_, err := aesgcm.ParseKeys(bad)
		require.Error(t, err, bad)
		assert.NotContains(t, err.Error(), secret[:10], "an error must not show the secret")
	}
}

var _ backend.Codec = (*aesgcm.Codec)(nil)

// BenchmarkSealOpen measures Encode then Decode of a 1 KiB payload.
func BenchmarkSealOpen(b *testing.B) {
	c := newCodec(b, key(b, "k1"))
	plain := bytes.Repeat([]byte("a"), 1024)
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		sealed, err := c.Encode(plain)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decode(sealed); err != nil {
			b.Fatal(err)
		}
	}
}
