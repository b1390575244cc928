package durable

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable/backend"
)

// spanIDsKey carries the ids cairn wants a span to have to IDGenerator.
type spanIDsKey struct{}

type spanIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

// IDGenerator gives the spans cairn emits the ids it derives for them
// (backend.Trace: from the run, the step and the attempt), and random ids
// to every other span. Install it in the TracerProvider that a worker's
// Tracing (or an agent Runtime) uses:
//
//	tp := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(durable.IDGenerator{}), ...)
//
// Without it a run's spans still come once each, but with random ids, so
// they do not nest under the run's span (which is emitted when the run
// ends, maybe in another process, and must have the id its steps name as
// their parent). It implements go.opentelemetry.io/otel/sdk/trace's
// IDGenerator and is safe for concurrent use.
type IDGenerator struct{}

// NewIDs returns the trace and span ids of a new root span.
func (IDGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if ids, ok := ctx.Value(spanIDsKey{}).(spanIDs); ok {
		return ids.trace, ids.span
	}
	var t trace.TraceID
	for !t.IsValid() {
		binary.BigEndian.PutUint64(t[:8], rand.Uint64())
		binary.BigEndian.PutUint64(t[8:], rand.Uint64())
	}
	return t, randomSpanID()
}

// NewSpanID returns the span id of a new span in trace traceID.
func (IDGenerator) NewSpanID(ctx context.Context, traceID trace.TraceID) trace.SpanID {
	if ids, ok := ctx.Value(spanIDsKey{}).(spanIDs); ok && ids.trace == traceID {
		return ids.span
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var s trace.SpanID
	for !s.IsValid() {
		binary.BigEndian.PutUint64(s[:], rand.Uint64())
	}
	return s
}

// fallbackTrace is the trace of a run recorded before runs had one: its id
// derives from the run's, so its spans still make one trace.
func fallbackTrace(runID string) backend.Trace {
	sum := sha256.Sum256([]byte("cairn trace of run " + runID))
	t := backend.Trace{Flags: trace.FlagsSampled}
	copy(t.TraceID[:], sum[:])
	return t
}
