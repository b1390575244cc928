package backend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Trace places a run in a distributed trace (OpenTelemetry, W3C Trace
// Context): the trace's id, the span the run hangs under, and the trace
// flags (sampled or not). A run's trace is fixed when it starts, recorded in
// its first event and its record, and handed on to its children and to its
// next history when it continues as new. So every worker that ever executes
// the run, at any time, can emit spans into the same trace, and the ids of
// those spans are derived from the trace, the run, the step and the attempt
// (RunSpanID, StepSpanID) rather than drawn at random: a step's span has one
// id, whichever worker reports it.
//
// Its text form is a W3C traceparent, "00-<trace id>-<parent>-<flags>",
// except that the parent is all zeros for a run started outside any span.
type Trace struct {
	TraceID trace.TraceID
	// Parent is the span the run's own span hangs under: the caller's span
	// when the run was started, the parent run's step for a child run, or
	// zero for a run started outside any span.
	Parent trace.SpanID
	Flags  trace.TraceFlags
}

// TraceFrom returns the trace a run started with ctx belongs to: the trace
// of the span in ctx, under that span, or, when ctx holds none, a new
// sampled trace with no parent.
func TraceFrom(ctx context.Context) Trace {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return Trace{TraceID: sc.TraceID(), Parent: sc.SpanID(), Flags: sc.TraceFlags()}
	}
	var t Trace
	for !t.TraceID.IsValid() {
		_, _ = rand.Read(t.TraceID[:])
	}
	t.Flags = trace.FlagsSampled
	return t
}

// IsZero reports whether t is the zero Trace: no trace was recorded.
func (t Trace) IsZero() bool { return t == Trace{} }

// Sampled reports whether the trace's flags ask for its spans to be kept.
func (t Trace) Sampled() bool { return t.Flags.IsSampled() }

// ParentContext is the span context a run's own span hangs under, as a
// remote span context; it is invalid (the run's span is a root) when the
// run has no parent span.
func (t Trace) ParentContext() trace.SpanContext {
	if !t.Parent.IsValid() {
		return trace.SpanContext{}
	}
	return t.SpanContext(t.Parent)
}

// SpanContext is the remote span context of the span id in the trace.
func (t Trace) SpanContext(id trace.SpanID) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: t.TraceID, SpanID: id, TraceFlags: t.Flags, Remote: true})
}

// RunSpanID is the id of the span of the run runID: all of its histories,
// from its start to its end.
func (t Trace) RunSpanID(runID string) trace.SpanID {
	return t.spanID(runID, 0, 0, 0)
}

// StepSpanID is the id of the span of one step of a run, in the history of
// the given generation (see RunInfo.Generation; steps are numbered anew in
// each history). For an activity, attempt counts from 1 and each attempt
// has its own span; for steps without attempts (timers, child runs,
// records) attempt is 0.
func (t Trace) StepSpanID(runID string, generation, step, attempt int) trace.SpanID {
	return t.spanID(runID, generation, step, attempt)
}

// EventSpanID is the id of the span of an event that belongs to no step
// (a signal received), by its position seq in the history of the given
// generation. Steps count from 1, so no step's span has this id.
func (t Trace) EventSpanID(runID string, generation int, seq int64) trace.SpanID {
	return t.spanID(runID, generation, 0, int(seq))
}

func (t Trace) spanID(runID string, generation, step, attempt int) trace.SpanID {
	h := sha256.New()
	h.Write(t.TraceID[:])
	h.Write([]byte(runID))
	var nums [25]byte
	nums[0] = 0 // separates the run id from the numbers
	binary.BigEndian.PutUint64(nums[1:], uint64(generation))
	binary.BigEndian.PutUint64(nums[9:], uint64(step))
	binary.BigEndian.PutUint64(nums[17:], uint64(attempt))
	h.Write(nums[:])
	var id trace.SpanID
	copy(id[:], h.Sum(nil))
	if !id.IsValid() {
		id[7] = 1 // all zeros is not a span id; 2^-64 of the time
	}
	return id
}

// String returns the trace's text form; see MarshalText.
func (t Trace) String() string {
	return fmt.Sprintf("00-%s-%s-%s", t.TraceID, t.Parent, t.Flags)
}

// MarshalText encodes t as a W3C traceparent (with an all-zero parent for
// a run without one); the zero Trace encodes as nothing.
func (t Trace) MarshalText() ([]byte, error) {
	if t.IsZero() {
		return nil, nil
	}
	return []byte(t.String()), nil
}

// UnmarshalText decodes MarshalText's form. Empty text is the zero Trace;
// anything else that is not a version-00 traceparent with a valid trace id
// is an error.
func (t *Trace) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*t = Trace{}
		return nil
	}
	parts := strings.Split(string(text), "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return fmt.Errorf("trace %q: not a traceparent (00-<32 hex>-<16 hex>-<2 hex>)", text)
	}
	var out Trace
	var flags [1]byte
	for _, f := range []struct {
		dst []byte
		src string
	}{{out.TraceID[:], parts[1]}, {out.Parent[:], parts[2]}, {flags[:], parts[3]}} {
		if _, err := hex.Decode(f.dst, []byte(f.src)); err != nil || strings.ToLower(f.src) != f.src {
			return fmt.Errorf("trace %q: not lowercase hex", text)
		}
	}
	if !out.TraceID.IsValid() {
		return fmt.Errorf("trace %q: the trace id is zero", text)
	}
	out.Flags = trace.TraceFlags(flags[0])
	*t = out
	return nil
}
