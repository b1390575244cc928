package backend

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeEventJSON is DecodeEvent without the fast path, as it was before
// eventdecode.go: the oracle the fast path is checked against. Keep it in
// step with DecodeEvent.
func decodeEventJSON(data []byte, codec Codec) (Event, error) {
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrCorruptHistory, err)
	}
	switch {
	case w.V == 0:
		return Event{}, fmt.Errorf("%w: event has no encoding version", ErrCorruptHistory)
	case w.V > eventVersion:
		return Event{}, fmt.Errorf("%w: encoding version %d is newer than this code's %d", ErrUnknownEvent, w.V, eventVersion)
	case w.Type == "":
		return Event{}, fmt.Errorf("%w: event has no type", ErrCorruptHistory)
	case !w.Type.Known():
		return Event{}, fmt.Errorf("%w: type %q (written by a newer version of cairn?)", ErrUnknownEvent, w.Type)
	case w.Step < 0 || w.Attempt < 0:
		return Event{}, fmt.Errorf("%w: %s event %d has a negative step or attempt", ErrCorruptHistory, w.Type, w.Seq)
	}
	e := w.Event
	if w.Codec != "" {
		if codec == nil || codec.Name() != w.Codec {
			return Event{}, fmt.Errorf("%w: event %d payload needs codec %q", ErrCorruptHistory, e.Seq, w.Codec)
		}
		var s string
		if err := json.Unmarshal(e.Payload, &s); err != nil {
			return Event{}, fmt.Errorf("%w: event %d payload: %v", ErrCorruptHistory, e.Seq, err)
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return Event{}, fmt.Errorf("%w: event %d payload: %v", ErrCorruptHistory, e.Seq, err)
		}
		if e.Payload, err = codec.Decode(raw); err != nil {
			return Event{}, fmt.Errorf("%w: event %d payload: codec %s: %v", ErrCorruptHistory, e.Seq, w.Codec, err)
		}
		if !json.Valid(e.Payload) {
			return Event{}, fmt.Errorf("%w: event %d payload is not JSON after decoding", ErrCorruptHistory, e.Seq)
		}
	}
	return e, nil
}

// flipCodec is a test codec: it flips every bit of the payload.
type flipCodec struct{}

func (flipCodec) Name() string { return "flip" }
func (flipCodec) Encode(p []byte) ([]byte, error) {
	out := make([]byte, len(p))
	for i, c := range p {
		out[i] = ^c
	}
	return out, nil
}
func (c flipCodec) Decode(p []byte) ([]byte, error) { return c.Encode(p) }

// fastPathEvents are events of every type, with the values that make the
// encoding interesting: escapes, non-ASCII text, HTML characters, large
// numbers, fractions of seconds, zones.
func fastPathEvents() []Event {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	t1 := time.Date(2024, 2, 29, 23, 59, 59, 120000000, time.UTC)
	east := time.Date(2026, 7, 1, 12, 0, 0, 999999999, time.FixedZone("", 5*3600+30*60))
	west := time.Date(1999, 12, 31, 23, 0, 0, 0, time.FixedZone("X", -8*3600))
	stack := "goroutine 7 [running]:\nmain.f()\n\t/src/main.go:12 +0x1d\n"
	return []Event{
		{Seq: 1, Type: EventRunStarted, Time: t0, Name: "wf", Payload: []byte(`{"a":1,"b":[true,false,null],"c":-1.5e+3}`), Seed: 18446744073709551615, RunID: "parent",
			Trace: Trace{TraceID: [16]byte{0x4b, 0xf9, 1}, Parent: [8]byte{0, 0xf0, 0x67}, Flags: 1}},
		{Seq: 2, Type: EventActivityScheduled, Time: t0, Step: 1, Attempt: 1, Name: "charge", InputHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{Seq: 3, Type: EventActivityAttemptFailed, Time: t1, Step: 1, Attempt: 1, FireAt: t1.Add(time.Second),
			Failure: &Failure{Message: `open "x": <no such file> & more`, Type: "*fs.PathError", Kind: KindPanic, Stack: stack, Details: "a\r\b\f\x01\u2028\u2029"}},
		{Seq: 4, Type: EventActivityAttemptStarted, Time: east, Step: 1, Attempt: 2},
		{Seq: 5, Type: EventActivityCompleted, Time: west, Step: 1, Attempt: 2, Payload: []byte(`"ok <b>&amp;</b> \u00e9 \ud83d\ude00"`), Started: east},
		{Seq: 6, Type: EventActivityFailed, Time: t0, Step: 1, Attempt: 3, Failure: &Failure{Message: "too many", Kind: KindTimeout, NonRetryable: true}},
		{Seq: 7, Type: EventTimerStarted, Time: t0, Step: 2, FireAt: t0.Add(time.Hour)},
		{Seq: 8, Type: EventTimerFired, Time: t0.Add(time.Hour), Step: 2, Started: t0, Parent: 1},
		{Seq: 8, Type: EventRunStarted, Time: t0, Trace: Trace{TraceID: [16]byte{15: 1}}},
		{Seq: 9, Type: EventTimerCanceled, Time: t0, Step: 2},
		{Seq: 10, Type: EventSideEffect, Time: t0, Step: 3, Payload: []byte(`0`), Parent: 2},
		{Seq: 11, Type: EventVersion, Time: t0, Name: "change", Version: 3},
		{Seq: 12, Type: EventSignalReceived, Time: t0, Name: "approve ☃", Payload: []byte(`"héllo ☃"`), Sender: "ann", Started: east},
		{Seq: 13, Type: EventCancelRequested, Time: t0, Sender: "ops \"team\""},
		{Seq: 14, Type: EventChildStarted, Time: t0, Step: 4, Name: "child", RunID: "p/0/4", InputHash: "ab"},
		{Seq: 15, Type: EventChildCompleted, Time: t0, Step: 4, RunID: "p/0/4", Failure: &Failure{Message: "no", Kind: KindCanceled}},
		{Seq: 16, Type: EventChildCompleted, Time: t0, Step: 5, RunID: "p/0/5", Payload: []byte(`null`)},
		{Seq: 17, Type: EventRunCompleted, Time: t0, Payload: []byte(`[[],{},[{}],{"":""}]`)},
		{Seq: 18, Type: EventRunFailed, Time: t0, Failure: &Failure{Message: "bad", Kind: KindNondeterminism, Details: "diff\n-a\n+b"}},
		{Seq: 19, Type: EventRunCanceled, Time: t0, Failure: &Failure{}},
		{Seq: 20, Type: EventRunContinued, Time: t0, Payload: []byte(`{"n":123456789012345678901234567890}`)},
		{Seq: 9007199254740993, Type: EventRunStarted, Name: "zero time", Seed: 1},
	}
}

// trickyEntries are entries the fast path must leave to encoding/json, or
// must decode exactly as it does.
var trickyEntries = []string{
	// Traces: empty, bad, escaped, and a good one.
	`{"v":1,"type":"run_started","trace":""}`, `{"v":1,"type":"run_started","trace":"00-x"}`,
	`{"v":1,"type":"run_started","trace":"00-00000000000000000000000000000000-0000000000000000-01"}`,
	`{"v":1,"type":"run_started","trace":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\u0031"}`,
	`{"v":1,"type":"run_started","trace":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`,
	`{"v":1,"type":"run_started","trace":7}`, `{"v":1,"type":"timer_fired","started":"2026-01-01T00:00:00Z","started":"2026-01-01T00:00:00Z"}`,
	``, `{`, `}`, `{}`, `[]`, `null`, `{"v":1}`, ` {"v":1,"type":"timer_fired"}`, `{"v":1,"type":"timer_fired"} `,
	`{"v":1,"type":"timer_fired"}x`, `{"v":1,"type":"timer_fired"}}`, `{"v":1,"type":"timer_fired",}`, `{"v":1,,"type":"timer_fired"}`,
	"{\"v\":1,\n\"type\":\"timer_fired\"}", `{"v" :1,"type":"timer_fired"}`, `{"v":1 ,"type":"timer_fired"}`,
	// Duplicate keys, keys in other cases, escaped and folded keys.
	`{"v":1,"v":2,"type":"timer_fired"}`, `{"v":1,"type":"timer_fired","type":"bogus"}`,
	`{"v":1,"type":"run_failed","failure":{"message":"a"},"failure":{"type":"b"}}`,
	`{"v":1,"type":"run_failed","failure":{"message":"a","message":"b"}}`,
	`{"V":1,"Type":"timer_fired","SEQ":3}`, `{"v":1,"type":"timer_fired","s\u0065q":4}`,
	"{\"v\":1,\"type\":\"timer_fired\",\"\u017feq\":5}", "{\"v\":1,\"type\":\"run_failed\",\"failure\":{\"\u212aind\":\"panic\"}}",
	`{"v":1,"type":"timer_fired","extra":{"a":[1]}}`, `{"v":1,"type":"run_failed","failure":{"message":"a","extra":1}}`,
	// Numbers.
	`{"v":1,"type":"timer_fired","seq":1.0}`, `{"v":1,"type":"timer_fired","seq":1e2}`, `{"v":1,"type":"timer_fired","seq":-0}`,
	`{"v":1,"type":"timer_fired","seq":-7}`, `{"v":1,"type":"timer_fired","seq":01}`, `{"v":1,"type":"timer_fired","seq":0}`,
	`{"v":1,"type":"timer_fired","seq":123456789012345678}`, `{"v":1,"type":"timer_fired","seq":1234567890123456789}`,
	`{"v":1,"type":"timer_fired","seq":9223372036854775807}`, `{"v":1,"type":"timer_fired","seq":9223372036854775808}`,
	`{"v":1,"type":"run_started","seed":18446744073709551615}`, `{"v":1,"type":"run_started","seed":18446744073709551616}`,
	`{"v":1,"type":"run_started","seed":99999999999999999999}`, `{"v":1,"type":"run_started","seed":100000000000000000000}`,
	`{"v":1,"type":"timer_fired","step":-1}`, `{"v":-1,"type":"timer_fired"}`, `{"v":"1","type":"timer_fired"}`, `{"v":2,"type":"timer_fired"}`,
	`{"v":1,"type":"timer_fired","step":1E0}`, `{"v":1,"type":"timer_fired","step":true}`,
	// null and other types where a field wants something else.
	`{"v":1,"type":"timer_fired","name":null}`, `{"v":1,"type":"run_failed","failure":null}`, `{"v":1,"type":"signal_received","payload":null}`,
	`{"v":1,"type":"timer_fired","time":null}`, `{"v":1,"type":null}`, `{"v":null,"type":"timer_fired"}`, `{"v":1,"type":"timer_fired","name":1}`,
	`{"v":1,"type":"run_failed","failure":{"non_retryable":null}}`, `{"v":1,"type":"run_failed","failure":{"non_retryable":"true"}}`,
	`{"v":1,"type":"run_failed","failure":{"non_retryable":1}}`, `{"v":1,"type":"run_failed","failure":{"non_retryable":tru}}`,
	`{"v":1,"type":"run_failed","failure":[]}`, `{"v":1,"type":"run_failed","failure":{}}`, `{"v":1,"type":"run_failed","failure":{"kind":"odd"}}`,
	// Strings.
	`{"v":1,"type":"timer_fired","name":"a\"b\\c\/d\b\f\n\r\t\u00e9\u2028\u0000"}`, `{"v":1,"type":"timer_fired","name":"\ud83d\ude00"}`,
	`{"v":1,"type":"timer_fired","name":"\ud800"}`, `{"v":1,"type":"timer_fired","name":"\udc00\ud800"}`, `{"v":1,"type":"timer_fired","name":"\u12"}`,
	`{"v":1,"type":"timer_fired","name":"\x"}`, `{"v":1,"type":"timer_fired","name":"\'"}`, "{\"v\":1,\"type\":\"timer_fired\",\"name\":\"\xff\"}",
	"{\"v\":1,\"type\":\"timer_fired\",\"name\":\"\xed\xa0\x80\"}", "{\"v\":1,\"type\":\"timer_fired\",\"name\":\"a\tb\"}",
	"{\"v\":1,\"type\":\"timer_fired\",\"name\":\"\u00e9\u2028\"}", `{"v":1,"type":"timer_fired","name":"unterminated}`,
	`{"v":1,"type":"timer_\u0066ired"}`, `{"v":1,"type":"Timer_Fired"}`, `{"v":1,"type":"no_such_type"}`, `{"v":1,"type":""}`,
	// Times.
	`{"v":1,"type":"timer_fired","time":"2026-02-29T00:00:00Z"}`, `{"v":1,"type":"timer_fired","time":"2024-02-29T00:00:00Z"}`,
	`{"v":1,"type":"timer_fired","time":"1900-02-29T00:00:00Z"}`, `{"v":1,"type":"timer_fired","time":"2000-02-29T00:00:00Z"}`,
	`{"v":1,"type":"timer_fired","time":"2026-04-31T00:00:00Z"}`, `{"v":1,"type":"timer_fired","time":"2026-12-31T23:59:60Z"}`,
	`{"v":1,"type":"timer_fired","time":"2026-01-02T03:04:05.123456789123Z"}`, `{"v":1,"type":"timer_fired","time":"2026-01-02T03:04:05.1Z"}`,
	`{"v":1,"type":"timer_fired","time":"2026-01-02T03:04:05.Z"}`, `{"v":1,"type":"timer_fired","time":"2026-01-02T03:04:05,5Z"}`,
	`{"v":1,"type":"timer_fired","time":"2026-01-02T03:04:05+02:00"}`, `{"v":1,"type":"timer_fired","time":"2026-01-02T03:04:05-00:00"}`,
	`{"v":1,"type":"timer_fired","time":"2026-01-02T03:04:05+00:00"}`, `{"v":1,"type":"timer_fired","time":"2026-01-02T03:04:05+24:00"}`,
	`{"v":1,"type":"timer_fired","time":"2026-01-02T03:04:05+23:60"}`, `{"v":1,"type":"timer_fired","time":"2026-01-02T03:04:05+0200"}`,
	`{"v":1,"type":"timer_fired","time":"2026-01-02T3:04:05Z"}`, `{"v":1,"type":"timer_fired","time":"2026-01-02t03:04:05z"}`,
	`{"v":1,"type":"timer_fired","time":"2026-01-02 03:04:05Z"}`, `{"v":1,"type":"timer_fired","time":"0000-01-01T00:00:00Z"}`,
	`{"v":1,"type":"timer_fired","time":"9999-12-31T23:59:59.999999999-23:59"}`, `{"v":1,"type":"timer_fired","time":"10000-01-01T00:00:00Z"}`,
	`{"v":1,"type":"timer_fired","time":"2026\u002d01-02T03:04:05Z"}`, `{"v":1,"type":"timer_fired","time":""}`, `{"v":1,"type":"timer_fired","time":5}`,
	`{"v":1,"type":"timer_fired","fire_at":"2026-01-02T03:04:05Z","fire_at":"2026-01-02T03:04:06Z"}`,
	// Payloads.
	`{"v":1,"type":"signal_received","payload":{"a":[1,2,{"b":null}],"c":"\u003c\\"}}`, `{"v":1,"type":"signal_received","payload":1.5e-3}`,
	`{"v":1,"type":"signal_received","payload":-0}`, `{"v":1,"type":"signal_received","payload":01}`, `{"v":1,"type":"signal_received","payload":[1,]}`,
	`{"v":1,"type":"signal_received","payload":{"a"}}`, `{"v":1,"type":"signal_received","payload":tru}`, `{"v":1,"type":"signal_received","payload":[1, 2]}`,
	`{"v":1,"type":"signal_received","payload":-}`, `{"v":1,"type":"signal_received","payload":1.}`, `{"v":1,"type":"signal_received","payload":1e}`,
	`{"v":1,"type":"signal_received","payload":[}`, `{"v":1,"type":"signal_received","payload":{"a":1]}`, `{"v":1,"type":"signal_received","payload":"\ud800"}`,
	`{"v":1,"type":"signal_received","payload":""}`, `{"v":1,"type":"signal_received","payload":truex}`, `{"v":1,"type":"signal_received","payload":{"a":1,}}`,
	`{"v":1,"type":"signal_received","payload":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`,
	`{"v":1,"type":"signal_received","payload":` + strings.Repeat(`{"a":`, 256) + "1" + strings.Repeat("}", 256) + `}`,
	`{"v":1,"type":"signal_received","payload":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
	// Codecs.
	`{"v":1,"codec":"flip","type":"signal_received","payload":"hQ=="}`, `{"v":1,"codec":"flip","type":"signal_received","payload":"!!"}`,
	`{"v":1,"codec":"flip","type":"signal_received","payload":1}`, `{"v":1,"codec":"other","type":"signal_received","payload":"hQ=="}`,
	`{"v":1,"codec":"","type":"signal_received","payload":"x"}`, `{"v":1,"codec":"flip","type":"signal_received"}`,
}

// FuzzDecodeFastPath checks that DecodeEvent, with its fast path, decodes
// every input as encoding/json alone does: the fast path either gives the
// same wireEvent as json.Unmarshal or gives up, and DecodeEvent gives the
// same Event as decodeEventJSON, or fails when it fails.
func FuzzDecodeFastPath(f *testing.F) {
	for _, e := range fastPathEvents() {
		for _, codec := range []Codec{nil, flipCodec{}} {
			data, err := EncodeEvent(e, codec)
			require.NoError(f, err)
			f.Add(data, codec != nil)
		}
	}
	for _, s := range trickyEntries {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, useCodec bool) {
		var codec Codec
		if useCodec {
			codec = flipCodec{}
		}
		require.NoError(t, checkFastPath(data, codec))
	})
}

// checkFastPath checks that the fast path decodes data as encoding/json
// does or gives up, and that DecodeEvent gives what decodeEventJSON gives.
func checkFastPath(data []byte, codec Codec) error {
	var fast, slow wireEvent
	ok := decodeWireFast(data, &fast)
	err := json.Unmarshal(data, &slow)
	switch {
	case ok && err != nil:
		return fmt.Errorf("fast path decoded %q, which encoding/json refuses (%v), to %#v", data, err, fast)
	case ok && !reflect.DeepEqual(fast, slow):
		return fmt.Errorf("fast path decoded %q to\n %#v\nencoding/json to\n %#v", data, fast, slow)
	case !ok && !reflect.DeepEqual(fast, wireEvent{}):
		return fmt.Errorf("fast path gave up on %q but left %#v", data, fast)
	}

	got, gotErr := DecodeEvent(data, codec)
	want, wantErr := decodeEventJSON(data, codec)
	switch {
	case (gotErr != nil) != (wantErr != nil):
		return fmt.Errorf("DecodeEvent(%q) error %v, encoding/json error %v", data, gotErr, wantErr)
	case gotErr != nil && !errors.Is(gotErr, ErrCorruptHistory) && !errors.Is(gotErr, ErrUnknownEvent):
		return fmt.Errorf("DecodeEvent(%q) error %v is neither corrupt nor unknown", data, gotErr)
	case !reflect.DeepEqual(got, want):
		return fmt.Errorf("DecodeEvent(%q) gave\n %#v\nencoding/json\n %#v", data, got, want)
	}
	return nil
}

// TestFastPathPerturbations checks the fast path on every encoded event
// with one change at each byte: a byte inserted, deleted or replaced, a
// letter in the other case. Most changes make an entry the fast path must
// leave to encoding/json; a few keep it valid in ways only a careful
// decoder gets right.
func TestFastPathPerturbations(t *testing.T) {
	bytesIn := []byte(" \"\\09.eZ\xc3\n01-+EnTtu{}[],:\x00\x7f\xff\xa9")
	if testing.Short() {
		bytesIn = bytesIn[:8]
	}
	for _, e := range fastPathEvents() {
		for _, codec := range []Codec{nil, flipCodec{}} {
			if codec != nil && e.Payload == nil {
				continue // the same entry as without a codec
			}
			data, err := EncodeEvent(e, codec)
			require.NoError(t, err)
			var variants [][]byte
			for p := range len(data) + 1 {
				variants = append(variants, append(data[:p:p], data[min(p+1, len(data)):]...))
				for _, c := range bytesIn {
					variants = append(variants,
						append(append(data[:p:p], c), data[p:]...),
						append(append(data[:p:p], c), data[min(p+1, len(data)):]...))
				}
				if p < len(data) && ('a' <= data[p] && data[p] <= 'z' || 'A' <= data[p] && data[p] <= 'Z') {
					variants = append(variants, append(append(data[:p:p], data[p]^0x20), data[p+1:]...))
				}
			}
			for _, v := range variants {
				// What the fast path leaves goes to encoding/json, as
				// FuzzDecodeFastPath checks; here only what it takes.
				var fast, slow wireEvent
				if !decodeWireFast(v, &fast) {
					continue
				}
				// require, not assert: one bug would fail thousands of variants.
				require.NoError(t, json.Unmarshal(v, &slow), "fast path decoded %q, which encoding/json refuses, to %#v", v, fast)
				require.Equal(t, slow, fast, "fast path decoded %q unlike encoding/json", v)
			}
		}
	}
}

// TestFastPathTakesEncodedEvents checks that what EncodeEvent writes takes
// the fast path, and decodes to the event encoded.
func TestFastPathTakesEncodedEvents(t *testing.T) {
	for _, e := range fastPathEvents() {
		for _, codec := range []Codec{nil, flipCodec{}} {
			data, err := EncodeEvent(e, codec)
			require.NoError(t, err)
			var w wireEvent
			if !assert.True(t, decodeWireFast(data, &w), "fast path gave up on %s", data) {
				continue
			}
			got, err := DecodeEvent(data, codec)
			require.NoError(t, err, "%s", data)
			want, _ := decodeEventJSON(data, codec)
			assert.Equal(t, want, got, "%s", data)
			if !e.Time.Equal(got.Time) || !e.FireAt.Equal(got.FireAt) || e.Name != got.Name || e.Seed != got.Seed ||
				!reflect.DeepEqual(e.Failure, got.Failure) || !json.Valid(got.Payload) && e.Payload != nil {
				t.Errorf("round trip of %s changed it: %+v", data, got)
			}
		}
	}
}

// TestFastPathPayloadIsACopy checks that a decoded payload does not share
// memory with the entry, which the caller may reuse.
func TestFastPathPayloadIsACopy(t *testing.T) {
	data, _ := EncodeEvent(Event{Seq: 1, Type: EventSignalReceived, Payload: []byte(`"abc"`)}, nil)
	e, err := DecodeEvent(data, nil)
	require.NoError(t, err)
	for i := range data {
		data[i] = 'x'
	}
	assert.Equal(t, `"abc"`, string(e.Payload), "payload changed with the entry")
}

// BenchmarkDecodeEvent decodes the events of a typical history: activities
// scheduled and completed, with an occasional failure, with the fast path
// (DecodeEvent) and without it (encoding/json).
func BenchmarkDecodeEvent(b *testing.B) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)
	events := []Event{
		{Seq: 1, Type: EventRunStarted, Time: t0, Name: "steps", Payload: []byte(`4999`), Seed: 12495413190335412335},
		{Seq: 2, Type: EventActivityScheduled, Time: t0, Step: 1, Attempt: 1, Name: "noop", InputHash: "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9"},
		{Seq: 3, Type: EventActivityCompleted, Time: t0, Step: 1, Attempt: 1, Payload: []byte(`{"id":"ord-1234","total":1999,"items":["a","b"]}`)},
		{Seq: 4, Type: EventActivityAttemptFailed, Time: t0, Step: 2, Attempt: 1, FireAt: t0.Add(time.Second),
			Failure: &Failure{Message: "dial tcp: connection refused", Type: "*net.OpError"}},
	}
	for _, codec := range []Codec{nil, flipCodec{}} {
		var entries [][]byte
		size := 0
		for _, e := range events {
			data, err := EncodeEvent(e, codec)
			require.NoError(b, err)
			entries = append(entries, data)
			size += len(data)
		}
		name := "plain"
		if codec != nil {
			name = "codec"
		}
		for _, impl := range []struct {
			name   string
			decode func([]byte, Codec) (Event, error)
		}{{"fast", DecodeEvent}, {"json", decodeEventJSON}} {
			b.Run(name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size / len(entries)))
				for i := 0; b.Loop(); i++ {
					if _, err := impl.decode(entries[i%len(entries)], codec); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// FuzzFastPathEncoded checks, for events built from fuzzed fields, that
// what EncodeEvent writes takes the fast path and decodes as it does with
// encoding/json. FuzzDecodeFastPath mutates bytes; this one reaches odd
// text, numbers, times and zones that EncodeEvent writes correctly.
func FuzzFastPathEncoded(f *testing.F) {
	f.Add("noop", "9f86d081", `{"a":[1,2]}`, int64(12), 3, uint64(18446744073709551615), int64(1772600767), int64(8), 0, false, false)
	f.Add("☃ <&> \u2028", "\x00\x1f\"\\", `not json`, int64(0), 0, uint64(0), int64(-62135596800), int64(0), -479, true, true)
	f.Add("\xff\xfe", "\ud7ff", `"\ud83d\ude00"`, int64(1)<<62, 1<<30, uint64(1), int64(253402300799), int64(999999999), 1439, true, false)
	f.Fuzz(func(t *testing.T, name, text, payload string, seq int64, step int, seed uint64, unix, nsec int64, offsetMinutes int, fail, useCodec bool) {
		zone := time.FixedZone("", (offsetMinutes%(24*60))*60)
		if offsetMinutes%(24*60) == 0 {
			zone = time.UTC
		}
		when := time.Unix(unix, nsec).In(zone)
		e := Event{Seq: seq, Type: EventActivityCompleted, Time: when, Step: step, Attempt: step / 2, Name: name,
			InputHash: text, FireAt: when.Add(time.Duration(nsec)), Version: step, RunID: name + text, Seed: seed, Sender: text}
		if fail {
			e.Failure = &Failure{Message: text, Type: name, Kind: FailureKind(name), NonRetryable: step%2 == 0, Stack: text + name, Details: payload}
		}
		oddPayload := false // one the fast path may leave to encoding/json
		if json.Valid([]byte(payload)) {
			e.Payload = []byte(payload)
			oddPayload = strings.Contains(strings.ToLower(payload), `\ud`) || !utf8.ValidString(payload)
		} else if payload != "" {
			e.Payload, _ = json.Marshal(payload)
		}
		var codec Codec
		if useCodec {
			codec = flipCodec{}
		}
		data, err := EncodeEvent(e, codec)
		if err != nil {
			return // a time EncodeEvent cannot write, for one
		}
		var fast, slow wireEvent
		ok := decodeWireFast(data, &fast)
		require.NoError(t, json.Unmarshal(data, &slow), "encoding/json refuses %s", data)
		switch {
		case !ok && (!oddPayload || useCodec) && seq >= 0 && step >= 0:
			t.Fatalf("fast path gave up on %s", data)
		case ok && !reflect.DeepEqual(fast, slow):
			t.Fatalf("fast path decoded\n %#v\nencoding/json\n %#v", fast, slow)
		}
		got, gotErr := DecodeEvent(data, codec)
		want, wantErr := decodeEventJSON(data, codec)
		require.Equal(t, wantErr != nil, gotErr != nil, "DecodeEvent error %v, encoding/json error %v", gotErr, wantErr)
		require.Equal(t, want, got, "DecodeEvent decoded unlike encoding/json")
	})
}
