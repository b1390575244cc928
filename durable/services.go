package durable

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Now returns the workflow's current time: the time at which the event the
// workflow is handling was written. It is the same on replay.
func Now(ctx Context) time.Time {
	rt := ctx.runtime()
	rt.check()
	return rt.now
}

// NewTimer starts a durable timer that fires after d, measured from Now.
// The timer lives in the store: the run holds no worker while it waits, and
// the timer fires even if every worker restarted in between. A d of zero or
// less gives a future that is ready at once.
func NewTimer(ctx Context, d time.Duration) Future[struct{}] {
	rt := ctx.runtime()
	rt.check()
	f := &future[struct{}]{}
	if d <= 0 {
		f.set(struct{}{}, nil)
		return f
	}
	fireAt := rt.now.Add(d)
	cmd := &command{fireAt: fireAt}
	cmd.resolve = func(backend.Event) { f.set(struct{}{}, nil) }
	rt.issue(ctx, cmd, backend.Event{Type: backend.EventTimerStarted, FireAt: fireAt})
	f.what = description{kind: "timer", until: fireAt, step: cmd.step}
	return &timerFuture{future: f, step: cmd.step}
}

// timerFuture is a timer that can be canceled by the runtime when nobody
// waits for it any more (ReceiveTimeout).
type timerFuture struct {
	*future[struct{}]
	step int
}

// cancelTimer cancels a pending timer: it is journaled and will not fire.
func (rt *workflowRuntime) cancelTimer(f Future[struct{}]) {
	t, ok := f.(*timerFuture)
	if !ok || t.done || rt.pending[t.step] == nil {
		return
	}
	delete(rt.pending, t.step)
	e := backend.Event{Type: backend.EventTimerCanceled, Step: t.step}
	rt.matchOrRecord(e)
	rt.check()
}

// Sleep waits durably for d. With a cancelable ctx it returns ErrCanceled
// if the run is canceled first.
func Sleep(ctx Context, d time.Duration) error {
	_, err := NewTimer(ctx, d).Get(ctx)
	return err
}

// SideEffect runs fn once and journals its result; on replay it returns the
// journaled result without running fn. Use it for small non-deterministic
// values (a generated id, a configuration read). fn must not fail or block;
// anything that can fail belongs in an activity.
func SideEffect[T any](ctx Context, fn func() T) (T, error) {
	rt := ctx.runtime()
	rt.check()
	var v T
	cmd := &command{}
	if rec, ok := rt.recorded[cmdKey{backend.EventSideEffect, rt.lastStep + 1}]; ok {
		rt.issue(ctx, cmd, backend.Event{Type: backend.EventSideEffect})
		if err := json.Unmarshal(rec.Payload, &v); err != nil {
			return v, fmt.Errorf("decode side effect (step %d): %w", cmd.step, err)
		}
		return v, nil
	}
	v = fn()
	payload, err := encodePayload(v)
	if err != nil {
		return v, fmt.Errorf("side effect: %w", err)
	}
	rt.issue(ctx, cmd, backend.Event{Type: backend.EventSideEffect, Payload: payload})
	return v, nil
}

// Record journals a named value that the workflow computed, for those who
// read the history (a tool, an operator, a live view): what a person was
// asked to approve, a decision the workflow took. It is a side effect whose
// value is given: on replay Record checks that the code records the same
// name at the same step (a different one is a non-determinism error) and
// writes nothing; the value, computed again from replayed state, is not
// compared. v must encode as JSON.
func Record(ctx Context, name string, v any) error {
	rt := ctx.runtime()
	rt.check()
	if name == "" {
		return fmt.Errorf("record: a name is required")
	}
	payload, err := encodePayload(v)
	if err != nil {
		return fmt.Errorf("record %s: %w", name, err)
	}
	rt.issue(ctx, &command{}, backend.Event{Type: backend.EventSideEffect, Name: name, Payload: payload})
	return nil
}

// SetWaitingStatus sets the status the run is reported with while it
// waits (instead of backend.StatusWaiting), such as
// backend.StatusAwaitingApproval while it waits for a person's decision, so
// that operators can list such runs. The empty status restores
// backend.StatusWaiting. It is workflow state, not journaled: replay sets
// it again as the code runs.
func SetWaitingStatus(ctx Context, s backend.Status) {
	rt := ctx.runtime()
	rt.check()
	rt.waitStatus = s
}

// SetAwaiting sets what the run waits for from people or other programs
// (approvals to give, questions to answer), for those who list such
// requests across runs: v is encoded to JSON, passed through the worker's
// codec, and saved with the run's record by each commit from then on
// (backend.RunInfo.Awaiting), where a store that is a
// backend.AwaitingLister indexes it, so that finding every run's requests
// costs a few round trips instead of reading each run's history. A nil v clears
// it; so does the run's end, or a park. Keep it small (it is written with
// every commit while set) and keep it a summary of what the history
// holds: the history stays the truth.
//
// Like SetWaitingStatus it is workflow state, not journaled: replay sets
// it again as the code runs, and the next commit saves it.
func SetAwaiting(ctx Context, v any) error {
	rt := ctx.runtime()
	rt.check()
	if v == nil {
		rt.awaiting = nil
		return nil
	}
	data, err := encodePayload(v)
	if err != nil {
		return fmt.Errorf("set awaiting: %w", err)
	}
	if string(data) == "null" {
		data = nil
	}
	rt.awaiting = data
	return nil
}

// DefaultVersion is the version Version returns for runs that started
// before the change was made.
const DefaultVersion = 0

// Version lets workflow code change while runs are in flight. Guard the
// changed code with it:
//
//	if durable.Version(ctx, "add-discount", durable.DefaultVersion, 1) == 1 {
//		// new code
//	} else {
//		// old code, for runs that started before the change
//	}
//
// A run that reaches the change for the first time records maxSupported and
// keeps it; a run whose history was written by code without the change gets
// DefaultVersion. Once no run of a version is left, raise minSupported and
// delete its branch. A run whose recorded version is outside
// [minSupported, maxSupported] is parked with a non-determinism error.
func Version(ctx Context, changeID string, minSupported, maxSupported int) int {
	rt := ctx.runtime()
	rt.check()
	v, ok := rt.versions[changeID]
	if !ok {
		v = maxSupported
		if rt.replaying {
			v = DefaultVersion
		} else {
			rt.record(backend.Event{Type: backend.EventVersion, Name: changeID, Version: v})
		}
		rt.versions[changeID] = v
	}
	if v < minSupported || v > maxSupported {
		rt.fail(&NondeterminismError{RunID: rt.runID, Expected: fmt.Sprintf("version %d of change %q", v, changeID),
			Actual: fmt.Sprintf("supports versions %d to %d", minSupported, maxSupported)})
		rt.check()
	}
	return v
}

// Rand returns the run's random number generator. It is seeded from the
// run's history, so it yields the same numbers on replay.
func Rand(ctx Context) *rand.Rand {
	rt := ctx.runtime()
	rt.check()
	return rt.rng
}

// NewID returns a random UUID (version 4) drawn from Rand.
func NewID(ctx Context) string {
	r := Rand(ctx)
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		u := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(u >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Logger returns a logger for workflow code. Its records carry the run id
// (run_id) and the run's trace id (trace_id, see backend.Trace), and they
// reach the handler with the run's span in their context (unless the
// caller's context has a span), so that a handler bridging to
// OpenTelemetry logs (otelslog) gives them the run's trace and span ids.
// It drops records while the run is replaying, so each line is logged
// once.
func Logger(ctx Context) *slog.Logger {
	rt := ctx.runtime()
	rt.check()
	return rt.log
}

// replayHandler drops log records while its runtime replays history.
type replayHandler struct {
	slog.Handler
	rt *workflowRuntime
}

func (h replayHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !h.rt.replaying && h.Handler.Enabled(ctx, l)
}

func (h replayHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return replayHandler{h.Handler.WithAttrs(attrs), h.rt}
}

func (h replayHandler) WithGroup(name string) slog.Handler {
	return replayHandler{h.Handler.WithGroup(name), h.rt}
}

// runSpanHandler hands records to its handler with a run's span in their
// context, when the context they were logged with has none.
type runSpanHandler struct {
	slog.Handler
	span trace.SpanContext
}

func (h runSpanHandler) Handle(ctx context.Context, r slog.Record) error {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, h.span)
	}
	return h.Handler.Handle(ctx, r)
}

func (h runSpanHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return runSpanHandler{h.Handler.WithAttrs(attrs), h.span}
}

func (h runSpanHandler) WithGroup(name string) slog.Handler {
	return runSpanHandler{h.Handler.WithGroup(name), h.span}
}
