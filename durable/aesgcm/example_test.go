package aesgcm_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/aesgcm"
	"github.com/cairn-dev/cairn/durable/backend"
)

// Give workers, clients and the command-line tool the same keys: the
// current one first, then those that older payloads were sealed with.
func Example() {
	k2026 := aesgcm.Key{ID: "k2026", Secret: bytes.Repeat([]byte{7}, 32)} // use crypto/rand
	k2025 := aesgcm.Key{ID: "k2025", Secret: bytes.Repeat([]byte{5}, 32)}
	codec, err := aesgcm.New(k2026, k2025)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = durable.WorkerOptions{Codec: codec}
	_ = durable.ClientOptions{Codec: codec}

	data, _ := backend.EncodeEvent(backend.Event{Seq: 1, Type: backend.EventRunStarted, Name: "pay",
		Payload: []byte(`"card 4242"`)}, codec)
	fmt.Println(bytes.Contains(data, []byte("4242")))
	e, err := backend.DecodeEvent(data, codec)
	fmt.Println(string(e.Payload), err)

	// A process without the key gets a clear error, and can say which key.
	old, _ := aesgcm.New(k2025)
	_, err = old.Decode(mustEncode(codec, "x"))
	fmt.Println(errors.Is(err, aesgcm.ErrUnknownKey), err)
	// Output:
	// false
	// "card 4242" <nil>
	// true aesgcm: unknown key "k2026"
}

func mustEncode(c *aesgcm.Codec, s string) []byte {
	b, err := c.Encode([]byte(s))
	if err != nil {
		panic(err)
	}
	return b
}
