package backend_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
)

func sampleEvents() []backend.Event {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	return []backend.Event{
		{Seq: 1, Type: backend.EventRunStarted, Time: t0, Name: "wf", Payload: []byte(`{"a":1}`), Seed: 42, RunID: "parent"},
		{Seq: 2, Type: backend.EventActivityScheduled, Time: t0, Step: 1, Attempt: 1, Name: "charge", InputHash: "ab12"},
		{Seq: 3, Type: backend.EventActivityAttemptFailed, Time: t0, Step: 1, Attempt: 1, FireAt: t0.Add(time.Second),
			Failure: &backend.Failure{Message: "boom", Type: "*errors.errorString", Kind: backend.KindPanic, Stack: "goroutine 1"}},
		{Seq: 4, Type: backend.EventActivityAttemptStarted, Time: t0, Step: 1, Attempt: 2},
		{Seq: 5, Type: backend.EventActivityCompleted, Time: t0, Step: 1, Attempt: 2, Payload: []byte(`"ok"`)},
		{Seq: 6, Type: backend.EventTimerStarted, Time: t0, Step: 2, FireAt: t0.Add(time.Hour)},
		{Seq: 7, Type: backend.EventSignalReceived, Time: t0, Name: "approve", Payload: []byte(`"héllo ☃"`), Sender: "ann"},
		{Seq: 8, Type: backend.EventTimerCanceled, Time: t0, Step: 2},
		{Seq: 9, Type: backend.EventVersion, Time: t0, Name: "change", Version: 3},
		{Seq: 10, Type: backend.EventChildStarted, Time: t0, Step: 3, Name: "child", RunID: "p/0/3"},
		{Seq: 11, Type: backend.EventChildCompleted, Time: t0, Step: 3, RunID: "p/0/3", Failure: &backend.Failure{Message: "no", Kind: backend.KindCanceled}},
		{Seq: 12, Type: backend.EventCancelRequested, Time: t0, Sender: "ops"},
		{Seq: 13, Type: backend.EventRunFailed, Time: t0, Failure: &backend.Failure{Message: "bad", NonRetryable: true}},
	}
}

func TestEventRoundTrip(t *testing.T) {
	for _, codec := range []backend.Codec{nil, xorCodec{}} {
		for _, e := range sampleEvents() {
			data, err := backend.EncodeEvent(e, codec)
			require.NoError(t, err)
			got, err := backend.DecodeEvent(data, codec)
			require.NoError(t, err, "%s", e.Type)
			assert.Equal(t, e, got, "round trip of %s with %v", e.Type, codec)
		}
	}
}

func TestMarshalHistory(t *testing.T) {
	events := sampleEvents()
	data, err := backend.MarshalHistory(events)
	require.NoError(t, err)
	got, err := backend.UnmarshalHistory(bytes.NewReader(data))
	require.NoError(t, err, "round trip: %s", data)
	assert.Equal(t, events, got, "round trip: %s", data)
	for _, bad := range []string{"", "{}", "[1]", `[{"v":1,"seq":2,"type":"run_started"}]`} {
		_, err := backend.UnmarshalHistory(bytes.NewReader([]byte(bad)))
		assert.ErrorIs(t, err, backend.ErrCorruptHistory, "UnmarshalHistory(%q)", bad)
	}
}

// FuzzDecodeEvent checks that no input makes the decoder panic, that every
// error says the entry is corrupt or unknown, and that what decodes
// encodes back to an equal event.
func FuzzDecodeEvent(f *testing.F) {
	for _, e := range sampleEvents() {
		data, _ := backend.EncodeEvent(e, nil)
		f.Add(data, false)
		enc, _ := backend.EncodeEvent(e, xorCodec{})
		f.Add(enc, true)
	}
	for _, s := range []string{"", "null", "[]", `{"v":1}`, `{"v":2,"type":"run_started"}`, `{"v":1,"type":"run_started","seq":-1}`,
		`{"v":1,"type":"x"}`, `{"v":1,"type":"signal_received","payload":"\xff\xfe"}`, `{"v":1,"type":"run_started","codec":"xor","payload":"!!"}`,
		`{"v":1,"type":"run_started","payload":{"a":` + "\x00", `{"v":1,"type":"activity_completed","step":-3}`} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, useCodec bool) {
		var codec backend.Codec
		if useCodec {
			codec = xorCodec{}
		}
		e, err := backend.DecodeEvent(data, codec)
		if err != nil {
			if !errors.Is(err, backend.ErrCorruptHistory) && !errors.Is(err, backend.ErrUnknownEvent) {
				t.Fatalf("error %v is neither corrupt nor unknown", err)
			}
			return
		}
		again, err := backend.EncodeEvent(e, codec)
		require.NoError(t, err, "decoded event does not encode")
		back, err := backend.DecodeEvent(again, codec)
		require.NoError(t, err, "re-encoded event does not decode")
		if back.Type != e.Type || back.Seq != e.Seq || back.Step != e.Step || !sameJSON(back.Payload, e.Payload) {
			t.Fatalf("round trip changed the event: %+v -> %+v", e, back)
		}
	})
}

// sameJSON reports whether two JSON texts have the same value.
func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	return json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil && reflect.DeepEqual(va, vb)
}

// xorCodec stands in for encryption.
type xorCodec struct{}

func (xorCodec) Name() string { return "xor" }
func (xorCodec) Encode(p []byte) ([]byte, error) {
	out := make([]byte, len(p))
	for i, c := range p {
		out[i] = c ^ 0x5a
	}
	return out, nil
}
func (x xorCodec) Decode(p []byte) ([]byte, error) { return x.Encode(p) }
