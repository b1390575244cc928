package durable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Tracing makes a worker emit an OpenTelemetry span for each piece of work
// its runs commit (WorkerOptions.Tracing): a span per run, from its
// creation to its end across all its histories; one per activity attempt;
// one per timer, per child run, and per signal received (from the time
// the workflow began waiting for it, if it was). Spans come only from
// committed events, never from replay, and their ids derive from the run's
// trace, the run, the step and the attempt (backend.Trace), so a step has
// one span id whichever worker reports it, and the spans of a run nest
// under its span, which is emitted last, when the run ends.
//
// Spans that survive a crash: every ExportInterval the worker flushes the
// TracerProvider and records, for each run it wrote, how far the spans of
// its history are exported (backend.ExportMarker). A worker that takes a
// run over from one whose lease expired emits again the spans of the
// events after that mark, with the same ids; so does any worker that
// loads a run whose events past the mark were committed more than three
// export intervals ago (their worker let the run go, then died before it
// flushed). A run that ends keeps its lease until the spans of its end
// are exported, so that if its worker dies first, the lease expires and
// the worker that takes the run over sends them. The guarantee, with a
// store that records marks and a TracerProvider with ForceFlush (the
// SDK's):
//
//   - every span of a committed step, timer, signal, child run and run's
//     end is exported at least once, by its worker or by the next worker
//     that executes or takes over the run; not those of a history that
//     continue-as-new replaced before its worker flushed them (the history
//     is gone), nor those a flush failed to export (the collector was
//     down: the worker goes on without them);
//   - a span is sent twice only when its worker exported it and died
//     before its mark was recorded, within one export interval (a crash
//     test counts these); both copies have the same span id. Grafana
//     Tempo keeps one of the spans with the same id and kind when it
//     combines the parts of a trace; Jaeger and most others keep both, and
//     Jaeger's UI flags them.
//
// Without ForceFlush (another TracerProvider) spans count as exported when
// they are emitted; a store without marks means no span is emitted again.
type Tracing struct {
	// TracerProvider emits the spans. Build it with
	// sdktrace.WithIDGenerator(IDGenerator{}) so that spans have the ids
	// cairn derives (and nest under their run's span). Required.
	TracerProvider trace.TracerProvider
	// Describe, if set, shapes each span before it is emitted: it may
	// rename it, add attributes, change its parent, or drop it. Spans of
	// side effects (durable.Record) come with Drop set: a layer that
	// records its own events keeps the ones it knows. It is called from
	// the goroutine that executes the run, and must return quickly.
	Describe func(*Span)
	// ExportInterval is how often the worker flushes the TracerProvider
	// and records how far each run's spans are exported. Default 2s, and
	// at most a third of the worker's LeaseTTL.
	ExportInterval time.Duration
}

// Span is a span a worker is about to emit, for Tracing.Describe.
type Span struct {
	// Run is the run's record as written (for spans emitted again after a
	// crash, as read when the run was taken over).
	Run backend.RunInfo
	// Generation is the history, of the run's continue-as-new restarts,
	// that the event is in.
	Generation int
	// Trace is the run's trace, from which ID and Parent derive (see
	// backend.Trace's StepSpanID).
	Trace backend.Trace
	// Event is what ends the span: the end of an activity attempt
	// (completed, attempt failed, failed), a timer fired, a signal
	// received, a child run's end, a side effect, or the run's end
	// (completed, failed, canceled), which ends the run's span.
	Event backend.Event
	// Name and Kind are the span's: for the run, "run <workflow>"; for an
	// activity attempt, "activity <name>"; "timer"; "signal <name>";
	// "child <workflow>"; "side_effect <name>".
	Name string
	Kind trace.SpanKind
	// Parent is the span it hangs under: the run's span, the span of the
	// step given to WithinStep, or for the run's span the one the run was
	// started under (invalid: none).
	Parent trace.SpanContext
	// ID is the span's derived id.
	ID         trace.SpanID
	Start, End time.Time
	Attributes []attribute.KeyValue
	// Failure, if not nil, marks the span as failed.
	Failure *backend.Failure
	// Replayed says the worker had rebuilt the run from its history.
	Replayed bool
	// Resent says the span is emitted again by a worker that took the run
	// over (see Tracing).
	Resent bool
	// Drop, set by Describe, leaves the span out.
	Drop bool
}

// Span attributes the engine sets.
const (
	attrRunID      = attribute.Key("cairn.run.id")
	attrWorkflow   = attribute.Key("cairn.workflow")
	attrRunStatus  = attribute.Key("cairn.run.status")
	attrParentRun  = attribute.Key("cairn.run.parent_id")
	attrGeneration = attribute.Key("cairn.run.generation")
	attrStep       = attribute.Key("cairn.step")
	attrAttempt    = attribute.Key("cairn.attempt")
	attrReplayed   = attribute.Key("cairn.replayed")
	attrResent     = attribute.Key("cairn.resent")
	attrRetried    = attribute.Key("cairn.attempt.retried")
)

// tracer emits a worker's spans and keeps, for the export marks, how far
// it emitted each run's.
type tracer struct {
	tracer   trace.Tracer
	describe func(*Span)
	flush    func(context.Context) error // nil: the provider cannot flush
	interval time.Duration
	log      *slog.Logger
	store    backend.Store
	marker   backend.ExportMarker // nil: the store records no marks
	warnIDs  sync.Once

	mu      sync.Mutex
	emitted map[string]backend.ExportMark // by run id: how far spans were emitted
	// held are the leases of ended runs kept until their last spans are
	// exported: a worker that dies before leaves them to expire, and the
	// worker that takes the run over sends those spans (resendEnded).
	held []heldLease
}

// heldLease is the lease of an ended run, and its record to write when it
// is released.
type heldLease struct {
	lease backend.Lease
	run   backend.RunInfo
}

func newTracer(t *Tracing, log *slog.Logger, store backend.Store, leaseTTL time.Duration) *tracer {
	tr := &tracer{tracer: t.TracerProvider.Tracer("github.com/cairn-dev/cairn/durable"), describe: t.Describe,
		interval: t.ExportInterval, log: log, store: store, emitted: map[string]backend.ExportMark{}}
	tr.marker, _ = store.(backend.ExportMarker)
	if f, ok := t.TracerProvider.(interface{ ForceFlush(context.Context) error }); ok {
		tr.flush = f.ForceFlush
	}
	if tr.interval <= 0 {
		tr.interval = 2 * time.Second
	}
	// Held leases are released before they expire.
	tr.interval = min(tr.interval, leaseTTL/3)
	return tr
}

// written emits the spans of a write to a run.
func (t *tracer) written(ctx context.Context, w Written) {
	for _, e := range w.Previous {
		t.event(ctx, w.Run, w.Run.Generation-1, e, w.Replayed, false)
	}
	for _, e := range w.Events {
		t.event(ctx, w.Run, w.Run.Generation, e, w.Replayed, false)
	}
	t.emittedTo(w.Run.ID, w.Run.Generation, w.Run.HistoryLen)
}

// resend emits again the spans of the events of a run taken over that its
// earlier workers may not have exported: past the run's mark, and, unless
// takenOver (its worker is presumed dead), committed before the grace.
func (t *tracer) resend(ctx context.Context, run backend.RunInfo, history []backend.Event, takenOver bool, now time.Time) {
	if t.marker == nil {
		return // no marks: no way to tell what was exported
	}
	grace := now.Add(-3 * t.interval)
	sent := false
	for _, e := range history {
		if e.Seq <= run.SpansExported || (!takenOver && e.Time.After(grace)) {
			continue
		}
		t.event(ctx, run, run.Generation, e, true, true)
		sent = true
	}
	if sent || takenOver {
		t.emittedTo(run.ID, run.Generation, run.HistoryLen)
	}
}

func (t *tracer) emittedTo(runID string, gen int, pos int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.emitted[runID]; !ok || m.Generation < gen || (m.Generation == gen && m.Position < pos) {
		t.emitted[runID] = backend.ExportMark{RunID: runID, Generation: gen, Position: pos}
	}
}

// holdsEnded reports whether the lease of a run that ends is kept until
// the spans of its end are exported (releaseAfterExport): when the worker
// traces, on a store that records export marks. t may be nil.
func (t *tracer) holdsEnded() bool { return t != nil && t.marker != nil }

// releaseAfterExport keeps the lease of an ended run, whose record is run,
// until the spans emitted so far are exported.
func (t *tracer) releaseAfterExport(lease backend.Lease, run backend.RunInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.held = append(t.held, heldLease{lease: lease, run: run})
}

// export flushes the provider, records how far the runs' spans emitted
// before it are exported, and releases the leases held until then.
func (t *tracer) export(ctx context.Context) {
	t.mu.Lock()
	if len(t.emitted) == 0 && len(t.held) == 0 {
		t.mu.Unlock()
		return
	}
	marks := make([]backend.ExportMark, 0, len(t.emitted))
	for _, m := range t.emitted {
		marks = append(marks, m)
	}
	clear(t.emitted)
	held := t.held
	t.held = nil
	t.mu.Unlock()
	defer t.release(ctx, held)
	if t.flush != nil {
		if err := t.flush(ctx); err != nil {
			// What was not exported counts as not emitted: the next
			// worker of those runs after a crash sends it. (The ended
			// runs are let go all the same: a collector that is down
			// is no crash.)
			t.log.Warn("tracing: flush spans", "err", err)
			return
		}
	}
	if t.marker != nil {
		if err := t.marker.MarkExported(ctx, marks); err != nil {
			t.log.Warn("tracing: record exported spans", "runs", len(marks), "err", err)
		}
	}
}

// release lets the ended runs go whose leases were held, a few at a time
// (a store may send commits made at the same time together).
func (t *tracer) release(ctx context.Context, held []heldLease) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, 8)
	for _, h := range held {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			err := t.store.Commit(ctx, backend.Commit{Lease: h.lease, Expect: h.run.HistoryLen, Run: h.run, Release: true})
			if err != nil && !errors.Is(err, backend.ErrFenced) && !errors.Is(err, backend.ErrRunNotFound) {
				// Its lease expires, and a worker lets it go then.
				t.log.Warn("tracing: let an ended run go", "run_id", h.run.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

// resendEnded emits again, for an ended run whose lease this worker took,
// the spans its last worker may not have exported (see resend).
func (t *tracer) resendEnded(ctx context.Context, codec backend.Codec, lease backend.Lease, run backend.RunInfo, now time.Time) error {
	if t.marker == nil || run.SpansExported >= run.HistoryLen {
		return nil
	}
	entries, err := t.store.ReadHistory(ctx, run.ID, run.SpansExported+1)
	if err != nil {
		return fmt.Errorf("read history to trace: %w", err)
	}
	events, err := backend.DecodeHistory(entries, run.SpansExported+1, codec)
	if err != nil {
		// A damaged history is not this worker's to report here: the
		// run has ended.
		t.log.Warn("tracing: decode the history of an ended run", "run_id", run.ID, "err", err)
		return nil
	}
	t.resend(ctx, run, events, lease.TakenOver, now)
	return nil
}

// exportEvery exports every interval until ctx is done.
func (t *tracer) exportEvery(ctx context.Context) {
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			t.export(ctx)
		case <-ctx.Done():
			return
		}
	}
}

// exportLast exports what is left when the worker stops, even if ctx is
// done.
func (t *tracer) exportLast(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	t.export(ctx)
}

// event emits the span event e ends, if it ends one.
func (t *tracer) event(ctx context.Context, run backend.RunInfo, gen int, e backend.Event, replayed, resent bool) {
	tr := run.Trace
	if tr.IsZero() {
		tr = fallbackTrace(run.ID)
	}
	runSpan := tr.SpanContext(tr.RunSpanID(run.ID))
	s := Span{Run: run, Generation: gen, Trace: tr, Event: e, Kind: trace.SpanKindInternal, Parent: runSpan,
		Start: e.Started, End: e.Time, Failure: e.Failure, Replayed: replayed, Resent: resent}
	switch e.Type {
	case backend.EventActivityCompleted, backend.EventActivityAttemptFailed, backend.EventActivityFailed:
		s.Name, s.ID = "activity "+e.Name, tr.StepSpanID(run.ID, gen, e.Step, e.Attempt)
	case backend.EventTimerFired:
		s.Name, s.ID = "timer", tr.StepSpanID(run.ID, gen, e.Step, 0)
	case backend.EventChildCompleted:
		s.Name, s.ID = "child "+e.Name, tr.StepSpanID(run.ID, gen, e.Step, 0)
		s.Attributes = append(s.Attributes, attribute.String("cairn.child.run_id", e.RunID))
	case backend.EventSignalReceived:
		s.Name, s.ID = "signal "+e.Name, tr.EventSpanID(run.ID, gen, e.Seq)
	case backend.EventSideEffect:
		s.Name, s.ID, s.Drop = "side_effect "+e.Name, tr.StepSpanID(run.ID, gen, e.Step, 0), true
	case backend.EventRunCompleted, backend.EventRunFailed, backend.EventRunCanceled:
		s.Name, s.ID, s.Parent, s.Start = "run "+run.Workflow, runSpan.SpanID(), tr.ParentContext(), run.CreatedAt
		s.Attributes = append(s.Attributes, attrWorkflow.String(run.Workflow), attrRunStatus.String(string(run.Status)))
		if run.ParentID != "" {
			s.Attributes = append(s.Attributes, attrParentRun.String(run.ParentID))
		}
	default:
		return
	}
	if e.Parent > 0 && s.ID != runSpan.SpanID() {
		s.Parent = tr.SpanContext(tr.StepSpanID(run.ID, gen, e.Parent, 0))
	}
	if s.Start.IsZero() {
		s.Start = s.End
	}
	s.Attributes = append(s.Attributes, attrRunID.String(run.ID))
	isStep := s.ID != runSpan.SpanID()
	if e.Step > 0 && isStep {
		s.Attributes = append(s.Attributes, attrStep.Int(e.Step))
	}
	if e.Attempt > 0 {
		s.Attributes = append(s.Attributes, attrAttempt.Int(e.Attempt))
	}
	if e.Type == backend.EventActivityAttemptFailed {
		s.Attributes = append(s.Attributes, attrRetried.Bool(true))
	}
	if gen > 0 && isStep {
		s.Attributes = append(s.Attributes, attrGeneration.Int(gen))
	}
	s.Attributes = append(s.Attributes, attrReplayed.Bool(replayed))
	if resent {
		s.Attributes = append(s.Attributes, attrResent.Bool(true))
	}
	if t.describe != nil {
		t.describe(&s)
	}
	if !s.Drop {
		t.emit(ctx, tr, s)
	}
}

// emit starts and ends s with its derived id.
func (t *tracer) emit(ctx context.Context, tr backend.Trace, s Span) {
	ctx = trace.ContextWithSpanContext(ctx, s.Parent)
	ctx = context.WithValue(ctx, spanIDsKey{}, spanIDs{trace: tr.TraceID, span: s.ID})
	_, sp := t.tracer.Start(ctx, s.Name, trace.WithSpanKind(s.Kind), trace.WithTimestamp(s.Start),
		trace.WithAttributes(s.Attributes...))
	if sp.IsRecording() && sp.SpanContext().SpanID() != s.ID {
		t.warnIDs.Do(func() {
			t.log.Warn("tracing: the TracerProvider does not take cairn's span ids, so the spans of a run " +
				"will not nest under it; build it with sdktrace.WithIDGenerator(durable.IDGenerator{})")
		})
	}
	if f := s.Failure; f != nil {
		sp.SetStatus(codes.Error, f.Message)
		sp.SetAttributes(semconv.ErrorTypeKey.String(f.ErrorType()))
		if f.Kind == backend.KindLost {
			sp.AddEvent("attempt_lost", trace.WithTimestamp(s.End), trace.WithAttributes(
				attribute.String("cairn.reason", "the worker running the attempt stopped before it finished")))
		}
	}
	sp.End(trace.WithTimestamp(s.End))
}
