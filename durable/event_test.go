package durable_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/durable"
)

func sampleEvents() []durable.Event {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	return []durable.Event{
		{Seq: 1, Type: durable.EventRunStarted, Time: t0, Name: "wf", Payload: []byte(`{"a":1}`), Seed: 42, RunID: "parent"},
		{Seq: 2, Type: durable.EventActivityScheduled, Time: t0, Step: 1, Attempt: 1, Name: "charge", InputHash: "ab12"},
		{Seq: 3, Type: durable.EventActivityAttemptFailed, Time: t0, Step: 1, Attempt: 1, FireAt: t0.Add(time.Second),
			Failure: &durable.Failure{Message: "boom", Type: "*errors.errorString", Kind: durable.KindPanic, Stack: "goroutine 1"}},
		{Seq: 4, Type: durable.EventActivityAttemptStarted, Time: t0, Step: 1, Attempt: 2},
		{Seq: 5, Type: durable.EventActivityCompleted, Time: t0, Step: 1, Attempt: 2, Payload: []byte(`"ok"`)},
		{Seq: 6, Type: durable.EventTimerStarted, Time: t0, Step: 2, FireAt: t0.Add(time.Hour)},
		{Seq: 7, Type: durable.EventSignalReceived, Time: t0, Name: "approve", Payload: []byte(`"héllo ☃"`), Sender: "ann"},
		{Seq: 8, Type: durable.EventTimerCanceled, Time: t0, Step: 2},
		{Seq: 9, Type: durable.EventVersion, Time: t0, Name: "change", Version: 3},
		{Seq: 10, Type: durable.EventChildStarted, Time: t0, Step: 3, Name: "child", RunID: "p/0/3"},
		{Seq: 11, Type: durable.EventChildCompleted, Time: t0, Step: 3, RunID: "p/0/3", Failure: &durable.Failure{Message: "no", Kind: durable.KindCanceled}},
		{Seq: 12, Type: durable.EventCancelRequested, Time: t0, Sender: "ops"},
		{Seq: 13, Type: durable.EventRunFailed, Time: t0, Failure: &durable.Failure{Message: "bad", NonRetryable: true}},
	}
}

func TestEventRoundTrip(t *testing.T) {
	for _, codec := range []durable.Codec{nil, xorCodec{}} {
		for _, e := range sampleEvents() {
			data, err := durable.EncodeEvent(e, codec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := durable.DecodeEvent(data, codec)
			if err != nil {
				t.Fatalf("%s: %v", e.Type, err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("round trip of %s with %v:\n got %+v\nwant %+v", e.Type, codec, got, e)
			}
		}
	}
}

func TestMarshalHistory(t *testing.T) {
	events := sampleEvents()
	data, err := durable.MarshalHistory(events)
	if err != nil {
		t.Fatal(err)
	}
	got, err := durable.UnmarshalHistory(bytes.NewReader(data))
	if err != nil || !reflect.DeepEqual(got, events) {
		t.Fatalf("round trip: %v\n%s", err, data)
	}
	for _, bad := range []string{"", "{}", "[1]", `[{"v":1,"seq":2,"type":"run_started"}]`} {
		if _, err := durable.UnmarshalHistory(bytes.NewReader([]byte(bad))); !errors.Is(err, durable.ErrCorruptHistory) {
			t.Errorf("UnmarshalHistory(%q) = %v, want ErrCorruptHistory", bad, err)
		}
	}
}

// FuzzDecodeEvent checks that no input makes the decoder panic, that every
// error says the entry is corrupt or unknown, and that what decodes
// encodes back to an equal event.
func FuzzDecodeEvent(f *testing.F) {
	for _, e := range sampleEvents() {
		data, _ := durable.EncodeEvent(e, nil)
		f.Add(data, false)
		enc, _ := durable.EncodeEvent(e, xorCodec{})
		f.Add(enc, true)
	}
	for _, s := range []string{"", "null", "[]", `{"v":1}`, `{"v":2,"type":"run_started"}`, `{"v":1,"type":"run_started","seq":-1}`,
		`{"v":1,"type":"x"}`, `{"v":1,"type":"signal_received","payload":"\xff\xfe"}`, `{"v":1,"type":"run_started","codec":"xor","payload":"!!"}`,
		`{"v":1,"type":"run_started","payload":{"a":` + "\x00", `{"v":1,"type":"activity_completed","step":-3}`} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, useCodec bool) {
		var codec durable.Codec
		if useCodec {
			codec = xorCodec{}
		}
		e, err := durable.DecodeEvent(data, codec)
		if err != nil {
			if !errors.Is(err, durable.ErrCorruptHistory) && !errors.Is(err, durable.ErrUnknownEvent) {
				t.Fatalf("error %v is neither corrupt nor unknown", err)
			}
			return
		}
		again, err := durable.EncodeEvent(e, codec)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		back, err := durable.DecodeEvent(again, codec)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
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
