package backend_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, codec := range []backend.Codec{nil, xorCodec{}} {
		for _, p := range []string{`{"a":1}`, `[]`, `"héllo ☃"`, `null`} {
			data, err := backend.EncodePayload([]byte(p), codec)
			require.NoError(t, err)
			got, err := backend.DecodePayload(data, codec)
			require.NoError(t, err, "%s with %v", p, codec)
			assert.JSONEq(t, p, string(got), "with %v", codec)
		}
	}
}

func TestDecodePayloadRejects(t *testing.T) {
	enc, err := backend.EncodePayload([]byte(`{"a":1}`), xorCodec{})
	require.NoError(t, err)
	_, err = backend.DecodePayload(enc, nil)
	assert.ErrorIs(t, err, backend.ErrCorruptHistory, "a payload that needs a codec, read without one")
	for _, bad := range []string{"", "{}", `{"v":1}`, `{"v":1,"payload":`, `{"v":1,"codec":"xor","payload":"!!"}`, `{"v":1,"codec":"xor","payload":7}`} {
		_, err := backend.DecodePayload([]byte(bad), xorCodec{})
		assert.ErrorIs(t, err, backend.ErrCorruptHistory, "DecodePayload(%q)", bad)
	}
	_, err = backend.DecodePayload([]byte(`{"v":9,"payload":1}`), nil)
	assert.ErrorIs(t, err, backend.ErrUnknownEvent)
}

// FuzzDecodePayload checks that no input makes the decoder panic, that
// every error says the payload is corrupt or unknown, and that what
// decodes is JSON that encodes back to the same value.
func FuzzDecodePayload(f *testing.F) {
	for _, p := range []string{`{"a":1}`, `"x"`, `[1,2]`} {
		data, _ := backend.EncodePayload([]byte(p), nil)
		f.Add(data, false)
		enc, _ := backend.EncodePayload([]byte(p), xorCodec{})
		f.Add(enc, true)
	}
	for _, s := range []string{"", "null", `{"v":1}`, `{"v":2,"payload":1}`, `{"v":1,"codec":"xor","payload":"!!"}`, `{"v":1,"payload":"\xff"}`} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, useCodec bool) {
		var codec backend.Codec
		if useCodec {
			codec = xorCodec{}
		}
		p, err := backend.DecodePayload(data, codec)
		if err != nil {
			if !errors.Is(err, backend.ErrCorruptHistory) && !errors.Is(err, backend.ErrUnknownEvent) {
				t.Fatalf("error %v is neither corrupt nor unknown", err)
			}
			return
		}
		again, err := backend.EncodePayload(p, codec)
		require.NoError(t, err)
		back, err := backend.DecodePayload(again, codec)
		require.NoError(t, err)
		if !sameJSON(back, p) {
			t.Fatalf("round trip changed the payload: %s -> %s", p, back)
		}
	})
}
