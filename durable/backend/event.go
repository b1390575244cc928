package backend

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// EventType names a kind of history event. Every type is defined here.
type EventType string

// Event types. "Command" events are written because the workflow did
// something (they are matched against the code on replay); the others bring
// something from outside into the run (they are delivered to the code on
// replay, one at a time, in history order).
const (
	// EventRunStarted is the first event of every history: workflow
	// name, input (Payload), random seed, parent.
	EventRunStarted EventType = "run_started"
	// EventActivityScheduled (command) starts an activity's first attempt.
	EventActivityScheduled EventType = "activity_scheduled"
	// EventActivityAttemptStarted starts a later attempt of an activity.
	EventActivityAttemptStarted EventType = "activity_attempt_started"
	// EventActivityAttemptFailed records a failed attempt (an error, a
	// panic, a timeout, or an attempt cut off by a lost worker) that
	// will be retried at FireAt.
	EventActivityAttemptFailed EventType = "activity_attempt_failed"
	// EventActivityCompleted carries an activity's result.
	EventActivityCompleted EventType = "activity_completed"
	// EventActivityFailed carries an activity's final error.
	EventActivityFailed EventType = "activity_failed"
	// EventTimerStarted (command) starts a durable timer due at FireAt.
	EventTimerStarted EventType = "timer_started"
	// EventTimerFired says a timer came due.
	EventTimerFired EventType = "timer_fired"
	// EventTimerCanceled (command) cancels a timer nobody waits for.
	EventTimerCanceled EventType = "timer_canceled"
	// EventSideEffect (command) records a value computed by the workflow.
	EventSideEffect EventType = "side_effect"
	// EventVersion (command, no step) records the version chosen for a
	// change id (Name).
	EventVersion EventType = "version"
	// EventSignalReceived carries a named signal and its payload.
	EventSignalReceived EventType = "signal_received"
	// EventCancelRequested asks the run to cancel.
	EventCancelRequested EventType = "cancel_requested"
	// EventChildStarted (command) starts a child run (RunID).
	EventChildStarted EventType = "child_started"
	// EventChildCompleted carries a child run's result or failure.
	EventChildCompleted EventType = "child_completed"
	// EventRunCompleted (command) ends the run with a result.
	EventRunCompleted EventType = "run_completed"
	// EventRunFailed (command) ends the run with a failure.
	EventRunFailed EventType = "run_failed"
	// EventRunCanceled (command) ends a canceled run.
	EventRunCanceled EventType = "run_canceled"
	// EventRunContinued (command) ends this history; the run starts over
	// with a new history whose input is Payload.
	EventRunContinued EventType = "run_continued"
	// EventResumeRequested asks a parked run to be tried again with the
	// code deployed (durable.Client.Resume). It is sent to the inbox only, never
	// written to history.
	EventResumeRequested EventType = "resume_requested"
)

// IsCommand reports whether events of type t are written because the
// workflow code asked for them.
func (t EventType) IsCommand() bool {
	switch t {
	case EventActivityScheduled, EventTimerStarted, EventTimerCanceled, EventSideEffect,
		EventVersion, EventChildStarted, EventRunCompleted, EventRunFailed,
		EventRunCanceled, EventRunContinued:
		return true
	}
	return false
}

// Known reports whether t is an event type this version of cairn knows.
func (t EventType) Known() bool {
	switch t {
	case EventRunStarted, EventActivityAttemptStarted, EventActivityAttemptFailed,
		EventActivityCompleted, EventActivityFailed, EventTimerFired,
		EventSignalReceived, EventCancelRequested, EventChildCompleted, EventResumeRequested:
		return true
	}
	return t.IsCommand()
}

// Event is one entry of a run's history. Which fields are set depends on
// Type; the encoding leaves empty fields out.
type Event struct {
	// Seq is the event's position in its history, from 1.
	Seq  int64     `json:"seq"`
	Type EventType `json:"type"`
	// Time is when the event was written. For events delivered to the
	// workflow it is what Now returns while the workflow handles them.
	Time time.Time `json:"time"`
	// Step is the workflow step (activity, timer, side effect, child)
	// the event belongs to; steps are numbered from 1 in the order the
	// workflow issues them.
	Step    int `json:"step,omitempty"`
	Attempt int `json:"attempt,omitempty"`
	// Name is the workflow, activity, signal or child workflow name, or
	// the change id of a version marker. Events that end an activity
	// attempt or a child run repeat the name of what they end.
	Name string `json:"name,omitempty"`
	// Payload is JSON: a run's input or result, an activity's result, a
	// signal's value, a side effect's value.
	Payload json.RawMessage `json:"payload,omitempty"`
	// InputHash fingerprints an activity's or child's encoded input: the
	// first 64 bits of its SHA-256 in hex (all 256 in histories written
	// before cairn shortened it). Replay does not compare it.
	// Inputs are rebuilt by replay, so only their hash is journaled.
	InputHash string   `json:"input_hash,omitempty"`
	Failure   *Failure `json:"failure,omitempty"`
	// FireAt is when a timer is due or a failed attempt is retried.
	FireAt time.Time `json:"fire_at,omitzero"`
	// Version is a version marker's chosen version.
	Version int `json:"version,omitempty"`
	// RunID is a child run's id, or the parent's id in RunStarted.
	RunID string `json:"run_id,omitempty"`
	// Seed seeds the run's deterministic random numbers (RunStarted).
	Seed uint64 `json:"seed,omitempty"`
	// Sender says who sent a signal or a cancellation, when known.
	Sender string `json:"sender,omitempty"`
	// Trace is the trace the run belongs to (RunStarted).
	Trace Trace `json:"trace,omitzero"`
	// Started is, on an event that ends an activity attempt (completed,
	// attempt failed, failed), a timer (fired) or a child run (completed),
	// when that attempt, timer or child started; on a signal received,
	// when the workflow began waiting for it, if it was: with Time, the
	// span of the work or the wait the event ends.
	Started time.Time `json:"started,omitzero"`
	// Parent is, on an event that ends a step (as Started) and on a side
	// effect, the step whose span the step's span hangs under
	// (durable.WithinStep); 0: the run's span.
	Parent int `json:"parent,omitempty"`
}

// Failure is an error as it is recorded in history: it keeps the message
// and the kind of the error, not its Go value. Errors that come back from
// activities, children and runs are *Failure values (possibly wrapped), so
// a workflow sees the same error on its first execution and on replay.
type Failure struct {
	Message string `json:"message"`
	// Type is the Go type of the original error, e.g. "*fs.PathError".
	Type string `json:"type,omitempty"`
	// Kind classifies failures cairn itself produces, see FailureKind.
	Kind FailureKind `json:"kind,omitempty"`
	// NonRetryable is set when the error was marked non-retryable.
	NonRetryable bool `json:"non_retryable,omitempty"`
	// Stack is the goroutine stack of a panic.
	Stack string `json:"stack,omitempty"`
	// Details holds more text, e.g. a non-determinism diff.
	Details string `json:"details,omitempty"`
}

// FailureKind classifies a Failure. The engine's errors that carry a
// Failure unwrap to the sentinel error of its kind (see package durable).
type FailureKind string

// Failure kinds.
const (
	KindError          FailureKind = ""
	KindCanceled       FailureKind = "canceled"
	KindTimeout        FailureKind = "timeout"
	KindHeartbeat      FailureKind = "heartbeat_timeout"
	KindPanic          FailureKind = "panic"
	KindLost           FailureKind = "attempt_lost"
	KindNondeterminism FailureKind = "nondeterminism"
	KindCorrupt        FailureKind = "corrupt_history"
	KindUnknownEvent   FailureKind = "unknown_event"
	KindUnregistered   FailureKind = "unregistered"
)

func (f *Failure) Error() string { return f.Message }

// ErrorType is the failure's OpenTelemetry error.type: its kind, else its
// Go type, else "_OTHER"; "" for a nil failure.
func (f *Failure) ErrorType() string {
	switch {
	case f == nil:
		return ""
	case f.Kind != "":
		return string(f.Kind)
	case f.Type != "":
		return f.Type
	}
	return "_OTHER"
}

// eventVersion is the version of the event encoding written by this code.
const eventVersion = 1

// wireEvent is the versioned encoding of an Event: the event's fields plus
// the encoding version and, when a Codec transformed the payload, the
// codec's name (the payload is then a base64 string).
type wireEvent struct {
	V     int    `json:"v"`
	Codec string `json:"codec,omitempty"`
	Event
}

// Codec transforms payloads at rest, for example to encrypt or compress
// them (package durable/aesgcm encrypts them). Decode must invert Encode. Event metadata (type, step, names,
// times) stays readable; payloads are what a codec protects.
type Codec interface {
	// Name is recorded with each payload the codec encoded; it must not
	// change while encoded events exist.
	Name() string
	Encode(payload []byte) ([]byte, error)
	Decode(data []byte) ([]byte, error)
}

// EncodeEvent encodes e in the versioned format, passing its payload
// through codec when codec is not nil.
func EncodeEvent(e Event, codec Codec) ([]byte, error) {
	w := wireEvent{V: eventVersion, Event: e}
	if codec != nil && len(e.Payload) > 0 {
		enc, err := codec.Encode(e.Payload)
		if err != nil {
			return nil, fmt.Errorf("encode %s payload with codec %s: %w", e.Type, codec.Name(), err)
		}
		s, _ := json.Marshal(base64.StdEncoding.EncodeToString(enc))
		w.Codec = codec.Name()
		w.Payload = s
	}
	data, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", e.Type, err)
	}
	return data, nil
}

// DecodeEvent decodes an event written by EncodeEvent. An entry that is not
// a valid event, an unknown encoding version or event type, or a payload
// that codec cannot decode gives an error wrapping ErrCorruptHistory or
// ErrUnknownEvent; it never panics.
func DecodeEvent(data []byte, codec Codec) (Event, error) {
	var w wireEvent
	if !decodeWireFast(data, &w) { // see eventdecode.go
		if err := json.Unmarshal(data, &w); err != nil {
			return Event{}, fmt.Errorf("%w: %v", ErrCorruptHistory, err)
		}
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

// DecodeHistory decodes a history read from a store; entry i must be the
// event at position from+i.
func DecodeHistory(entries [][]byte, from int64, codec Codec) ([]Event, error) {
	events := make([]Event, len(entries))
	for i, data := range entries {
		e, err := DecodeEvent(data, codec)
		if err != nil {
			return nil, fmt.Errorf("history position %d: %w", from+int64(i), err)
		}
		if e.Seq != from+int64(i) {
			return nil, fmt.Errorf("history position %d: %w: event says position %d", from+int64(i), ErrCorruptHistory, e.Seq)
		}
		events[i] = e
	}
	return events, nil
}
