package durable

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
	"go.opentelemetry.io/otel/trace"
)

// executor runs one run in a worker while the worker holds the run's lease:
// it replays the history, feeds the workflow what arrives (activity results,
// due timers, inbox messages), commits what happened, starts activities, and
// lets the run go when it only waits for time or for the outside world.
type executor struct {
	w     *Worker
	runID string
	log   *slog.Logger
	lease backend.Lease
	info  backend.RunInfo
	// record is the record as last written.
	record backend.RunInfo
	rt     *workflowRuntime
	// committed is the length of the history in the store.
	committed int64

	results chan attemptResult
	poke    chan struct{}
	done    chan struct{}
	// running are the activity attempts in flight, by step.
	running map[int]context.CancelCauseFunc
	// toStart are attempts to start once the next commit succeeded.
	toStart []*command
	// children are child runs to create or look up.
	children []*command
	// consumed are inbox entries applied since the last commit.
	consumed []string
	// inboxDirty says the inbox must be read.
	inboxDirty bool
	// parked is why the run cannot go on, when it cannot.
	parked error
	// awaitingJSON is the last payload of SetAwaiting that
	// encodeAwaiting encoded, and awaitingEnc its encoding.
	awaitingJSON, awaitingEnc []byte
	// newHistory is the first event of a history that replaces the
	// current one at the next commit (continue-as-new).
	newHistory *backend.Event
	// previous are the events of the history that newHistory replaces
	// that were never written; observers hear of them with newHistory.
	previous []backend.Event
	// resumes are the inbox entries that asked for a parked run to be
	// tried again: removed by the first commit, or by parking again.
	resumes []string
	// replayed says the run was rebuilt from a history longer than its
	// first event, not kept in memory since it started.
	replayed bool
}

// errLeaseLost aborts an executor whose lease or history view is stale.
var errLeaseLost = errors.New("lease lost")

func (ex *executor) run(ctx context.Context) error {
	actCtx, cancelActs := context.WithCancelCause(ctx)
	defer func() {
		cancelActs(errLeaseLost)
		close(ex.done)
		if ex.rt != nil {
			ex.rt.close()
		}
	}()

	if err := ex.load(ctx); err != nil {
		return err
	}
	renewEvery := ex.w.leaseTTL / 3
	renewAt := ex.now().Add(renewEvery)
	renew := make(chan struct{}, 1)
	wake := make(chan struct{}, 1)
	for {
		if ex.parked == nil {
			if err := ex.gather(ctx); err != nil {
				return err
			}
		}
		if ex.parked == nil && ex.rt.fatal != nil {
			ex.parked = ex.rt.fatal
		}
		if ex.parked != nil {
			return ex.park(ctx)
		}
		if o := ex.rt.outcome; o != nil && o.Type == backend.EventRunStarted {
			ex.continueAsNew(*o)
			continue
		}
		idle := len(ex.running) == 0 && len(ex.toStart) == 0 && len(ex.children) == 0 && !ex.inboxDirty
		if err := ex.commit(ctx, idle); err != nil {
			return err
		}
		if ex.rt.outcome != nil {
			return ex.finish(ctx)
		}
		if idle {
			return nil
		}
		if ex.startWork(actCtx) || len(ex.children) > 0 || ex.inboxDirty {
			continue
		}

		// Wait for an activity, a message, a due time, or lease renewal.
		stopRenew := ex.w.clock.AfterFunc(renewAt.Sub(ex.now()), func() { notify(renew) })
		var stopWake func() bool
		if at, ok := ex.nextWake(); ok {
			stopWake = ex.w.clock.AfterFunc(at.Sub(ex.w.clock.Now()), func() { notify(wake) })
		}
		select {
		case r := <-ex.results:
			if r.cutOff && ctx.Err() != nil {
				// Stopping: as below, whichever the select saw first.
				stopRenew()
				ex.handOff()
				return ctx.Err()
			}
			ex.applyResult(r)
		case <-ex.poke:
			ex.inboxDirty = true
		case <-wake:
		case <-renew:
			lease, err := ex.w.store.Lease(ctx, ex.info.ID, ex.w.id, ex.w.leaseTTL)
			if err != nil {
				stopRenew()
				return fmt.Errorf("renew lease: %w", err)
			}
			ex.lease = lease
			renewAt = ex.now().Add(renewEvery)
			ex.inboxDirty = ex.inboxDirty || lease.Pending > 0
		case <-ctx.Done():
			stopRenew()
			ex.handOff()
			return ctx.Err()
		}
		stopRenew()
		if stopWake != nil {
			stopWake()
		}
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// load replays the run's history and picks up the work it left unfinished.
func (ex *executor) load(ctx context.Context) error {
	entries, err := ex.w.store.ReadHistory(ctx, ex.info.ID, 1)
	// The record counts what the store committed; entries beyond it were
	// written outside the store. A park writes the record alone, at the
	// record's count, which the store accepts whatever the history holds.
	ex.committed = ex.info.HistoryLen
	if errors.Is(err, backend.ErrCorruptHistory) {
		ex.parked = fmt.Errorf("read history: %w", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	// The lease said whether messages wait: an empty inbox costs no read.
	ex.inboxDirty = ex.lease.Pending > 0
	def, ok := ex.w.workflows[ex.info.Workflow]
	if !ok {
		ex.parked = fmt.Errorf("%w: %q", ErrUnregistered, ex.info.Workflow)
		return nil
	}
	history, err := backend.DecodeHistory(entries, 1, ex.w.codec)
	if err != nil {
		ex.parked = err
		return nil
	}
	if n := int64(len(entries)); n != ex.committed {
		ex.parked = fmt.Errorf("%w: position %d: the history holds %d entries, its record counts %d: an entry no commit wrote",
			backend.ErrCorruptHistory, min(n, ex.committed)+1, n, ex.committed)
		return nil
	}
	if len(history) == 0 || history[0].Type != backend.EventRunStarted {
		ex.parked = fmt.Errorf("%w: history does not begin with %s", backend.ErrCorruptHistory, backend.EventRunStarted)
		return nil
	}
	if ex.info.Trace.IsZero() {
		ex.info.Trace = history[0].Trace // a record written before traces were kept
	}
	log := ex.w.log
	if tr := ex.info.Trace; !tr.IsZero() {
		// Records of the run, its workflow code's and the worker's, carry
		// its trace id, and its span in their context for OTel bridges.
		run := tr.SpanContext(tr.RunSpanID(ex.info.ID))
		log = slog.New(runSpanHandler{log.Handler(), run}).With("trace_id", tr.TraceID.String())
		ex.log = slog.New(runSpanHandler{ex.log.Handler(), run}).With("trace_id", tr.TraceID.String())
	}
	ex.replayed = len(history) > 1
	if ex.w.tracer != nil {
		ex.w.tracer.resend(ctx, ex.info, history, ex.lease.TakenOver, ex.now())
	}
	ex.rt = newRuntime(ex.info.ID, ex.info.Generation, def, log)
	ex.rt.load(history)
	ex.adopt(ex.rt.takeIssued())
	// Work that history shows as unfinished: attempts cut off by a lost
	// worker run again, children are looked up.
	for _, step := range slices.Sorted(maps.Keys(ex.rt.pending)) {
		cmd := ex.rt.pending[step]
		switch {
		case !cmd.recorded:
			// Issued by this replay: started after the first commit.
		case cmd.kind == backend.EventActivityScheduled && cmd.running && cmd.queued():
			// Its result comes through the inbox, or its deadline passes.
		case cmd.kind == backend.EventActivityScheduled && cmd.running:
			ex.retryOrFail(cmd, &backend.Failure{Kind: backend.KindLost,
				Message: fmt.Sprintf("attempt %d lost: its worker stopped before it finished", cmd.attempt)}, 0)
		case cmd.kind == backend.EventChildStarted:
			ex.children = append(ex.children, cmd)
		}
	}
	return nil
}

// adopt takes the commands the workflow issued: activities start and
// children are created after the next commit.
func (ex *executor) adopt(issued []*command) {
	for _, cmd := range issued {
		switch cmd.kind {
		case backend.EventActivityScheduled:
			ex.toStart = append(ex.toStart, cmd)
		case backend.EventChildStarted:
			ex.children = append(ex.children, cmd)
		}
	}
}

// gather delivers to the workflow what is ready: activity results, inbox
// messages, children's outcomes, due timers and retries.
func (ex *executor) gather(ctx context.Context) error {
	for drained := false; !drained; {
		select {
		case r := <-ex.results:
			ex.applyResult(r)
		default:
			drained = true
		}
	}
	if ex.inboxDirty {
		ex.inboxDirty = false
		if err := ex.readInbox(ctx); err != nil {
			return err
		}
	}
	if err := ex.lookUpChildren(ctx); err != nil {
		return err
	}
	ex.fireDue()
	ex.adopt(ex.rt.takeIssued())
	return nil
}

func (ex *executor) now() time.Time { return ex.w.clock.Now() }

// apply delivers an incoming event unless the run has stopped.
func (ex *executor) apply(e backend.Event) {
	if ex.rt.stopped() {
		return
	}
	e.Time = ex.now()
	ex.rt.apply(e)
	ex.adopt(ex.rt.takeIssued())
}

func (ex *executor) applyResult(r attemptResult) {
	if r.cutOff {
		return // the worker is stopping: the run is handed off as it is
	}
	delete(ex.running, r.step)
	cmd := ex.rt.pending[r.step]
	if cmd == nil || cmd.kind != backend.EventActivityScheduled || cmd.attempt != r.attempt {
		return // a result for an attempt given up on
	}
	if r.failure == nil {
		ex.apply(backend.Event{Type: backend.EventActivityCompleted, Step: r.step, Attempt: r.attempt, Payload: r.payload})
		return
	}
	ex.retryOrFail(cmd, r.failure, r.retryAfter)
}

// retryOrFail records a failed attempt: retried per the activity's policy,
// or the activity's final failure.
func (ex *executor) retryOrFail(cmd *command, f *backend.Failure, after time.Duration) {
	policy := cmd.activity.opts.RetryPolicy
	if (ex.rt.canceled && cmd.cancelable) || !policy.retries(cmd.attempt, cmd.lost, f) {
		if f.Kind == backend.KindLost && !(ex.rt.canceled && cmd.cancelable) {
			f.Message = fmt.Sprintf("%s; %d attempts lost, the limit (RetryPolicy.MaximumLostAttempts)", f.Message, cmd.lost+1)
		}
		ex.apply(backend.Event{Type: backend.EventActivityFailed, Step: cmd.step, Attempt: cmd.attempt, Failure: f})
		return
	}
	wait := policy.Backoff(cmd.attempt)
	if f.Kind == backend.KindLost {
		wait = 0
	}
	wait = max(wait, after)
	ex.apply(backend.Event{Type: backend.EventActivityAttemptFailed, Step: cmd.step, Attempt: cmd.attempt, Failure: f,
		FireAt: ex.now().Add(wait)})
}

// fireDue fires due timers and starts due retries, earliest first.
func (ex *executor) fireDue() {
	now := ex.now()
	var due []*command
	for _, cmd := range ex.rt.pending {
		if at, ok := wakeOf(cmd); ok && !at.After(now) {
			due = append(due, cmd)
		}
	}
	slices.SortFunc(due, func(a, b *command) int {
		at, _ := wakeOf(a)
		bt, _ := wakeOf(b)
		return cmp.Or(at.Compare(bt), cmp.Compare(a.step, b.step))
	})
	for _, cmd := range due {
		if ex.rt.pending[cmd.step] != cmd {
			continue // resolved or canceled by an earlier one
		}
		if cmd.kind == backend.EventTimerStarted {
			ex.apply(backend.Event{Type: backend.EventTimerFired, Step: cmd.step})
			continue
		}
		if cmd.running {
			ex.retryOrFail(cmd, &backend.Failure{Kind: backend.KindTimeout, Message: fmt.Sprintf(
				"activity %s: no result from task queue %s within %v", cmd.name, cmd.activity.opts.TaskQueue,
				cmd.activity.opts.startToClose())}, 0)
			continue
		}
		if ex.rt.canceled && cmd.cancelable {
			ex.apply(backend.Event{Type: backend.EventActivityFailed, Step: cmd.step, Attempt: cmd.attempt,
				Failure: &backend.Failure{Message: "canceled before retry", Kind: backend.KindCanceled}})
			continue
		}
		ex.apply(backend.Event{Type: backend.EventActivityAttemptStarted, Step: cmd.step, Attempt: cmd.attempt + 1})
		ex.toStart = append(ex.toStart, cmd)
	}
}

// wakeOf returns when a pending command needs the executor: a timer's fire
// time, or a failed activity's retry time.
func wakeOf(cmd *command) (time.Time, bool) {
	switch {
	case cmd.kind == backend.EventTimerStarted:
		return cmd.fireAt, true
	case cmd.kind == backend.EventActivityScheduled && !cmd.running:
		return cmd.retryAt, true
	case cmd.kind == backend.EventActivityScheduled && cmd.queued():
		return cmd.remoteDeadline(), true
	}
	return time.Time{}, false
}

func (ex *executor) nextWake() (time.Time, bool) {
	var next time.Time
	found := false
	for _, cmd := range ex.rt.pending {
		if at, ok := wakeOf(cmd); ok && (!found || at.Before(next)) {
			next, found = at, true
		}
	}
	return next, found
}

// readInbox moves the run's inbox into its history.
func (ex *executor) readInbox(ctx context.Context) error {
	entries, err := ex.w.store.ReadInbox(ctx, ex.info.ID)
	if err != nil {
		return fmt.Errorf("read inbox: %w", err)
	}
	for _, entry := range entries {
		if ex.rt.stopped() {
			// The workflow ended or continues as new: what is left
			// stays in the inbox for the next history, if any.
			ex.inboxDirty = ex.rt.outcome != nil && ex.rt.outcome.Type == backend.EventRunStarted
			return nil
		}
		if slices.Contains(ex.consumed, entry.ID) {
			continue // applied already, not yet committed
		}
		e, err := backend.DecodeEvent(entry.Event, ex.w.codec)
		if err != nil {
			ex.parked = fmt.Errorf("inbox entry %s: %w", entry.ID, err)
			return nil
		}
		ex.consumed = append(ex.consumed, entry.ID)
		switch e.Type {
		case backend.EventSignalReceived:
			ex.apply(backend.Event{Type: e.Type, Name: e.Name, Payload: e.Payload, Sender: e.Sender})
		case backend.EventCancelRequested:
			if !ex.rt.canceled {
				ex.apply(backend.Event{Type: e.Type, Sender: e.Sender})
				ex.cancelWork(ctx)
			}
		case backend.EventActivityCompleted, backend.EventActivityAttemptFailed:
			if r, ok := ex.remoteResult(e); ok {
				ex.applyResult(r)
			}
		case backend.EventResumeRequested:
			// Done by executing the run: nothing to deliver.
			ex.resumes = append(ex.resumes, entry.ID)
		case backend.EventChildCompleted:
			if cmd := ex.rt.pending[e.Step]; cmd != nil && cmd.kind == backend.EventChildStarted && cmd.childID == e.RunID {
				ex.apply(backend.Event{Type: e.Type, Step: e.Step, RunID: e.RunID, Payload: e.Payload, Failure: e.Failure})
			}
		default:
			ex.parked = fmt.Errorf("inbox entry %s: %w: %s cannot be sent to a run", entry.ID, backend.ErrCorruptHistory, e.Type)
			return nil
		}
	}
	return nil
}

// cancelWork passes a cancellation on to running activities and children
// started with a cancelable context.
func (ex *executor) cancelWork(ctx context.Context) {
	for step, cancel := range ex.running {
		if cmd := ex.rt.pending[step]; cmd != nil && cmd.cancelable {
			cancel(ErrCanceled)
		}
	}
	for _, cmd := range ex.rt.pending {
		if cmd.kind == backend.EventChildStarted && cmd.cancelable {
			if err := ex.w.client.Cancel(ctx, cmd.childID); err != nil && !errors.Is(err, ErrRunEnded) {
				ex.log.Warn("cancel child run", "child", cmd.childID, "err", err)
			}
		}
	}
}

// lookUpChildren creates child runs the workflow started and delivers the
// outcome of those that have ended.
func (ex *executor) lookUpChildren(ctx context.Context) error {
	children := ex.children
	ex.children = nil
	for _, cmd := range children {
		if ex.rt.pending[cmd.step] != cmd {
			continue
		}
		end, err := ex.w.client.startChild(ctx, ex.info, cmd)
		if err != nil {
			return fmt.Errorf("start child run %s: %w", cmd.childID, err)
		}
		if end != nil {
			ex.apply(*end)
		}
	}
	return nil
}

// startWork starts the activity attempts that were committed: in the
// worker, or on their task queue. It reports whether that gave events to
// commit (a queue that could not be reached fails the attempt).
func (ex *executor) startWork(ctx context.Context) bool {
	progress := false
	for _, cmd := range ex.toStart {
		if ex.rt.pending[cmd.step] != cmd {
			continue
		}
		if cmd.queued() {
			if err := ex.pushAttempt(ctx, cmd); err != nil {
				ex.retryOrFail(cmd, failureOf(err), 0)
				progress = true
			}
			continue
		}
		actCtx, cancel := context.WithCancelCause(ctx)
		if ex.rt.canceled && cmd.cancelable {
			cancel(ErrCanceled)
		}
		ex.running[cmd.step] = cancel
		info := ActivityInfo{RunID: ex.info.ID, Workflow: ex.info.Workflow, Activity: cmd.name,
			Step: cmd.step, Attempt: cmd.attempt, IdempotencyKey: stepKey(ex.info.ID, ex.rt.generation, cmd.step)}
		fn, opts, input := ex.w.wrap(cmd.activity.run), cmd.activity.opts, cmd.input
		if sc := ex.attemptTrace(cmd).ParentContext(); sc.IsValid() {
			actCtx = trace.ContextWithRemoteSpanContext(actCtx, sc)
		}
		go func() {
			r := runAttempt(actCtx, ex.w.clock, fn, info, opts, input)
			cancel(nil)
			select {
			case ex.results <- r:
			case <-ex.done:
			}
		}()
	}
	ex.toStart = nil
	return progress
}

// attemptTrace is the run's trace under the span of the current attempt of
// activity cmd: its parent is the parent of the spans the activity makes.
func (ex *executor) attemptTrace(cmd *command) backend.Trace {
	t := ex.info.Trace
	if !t.IsZero() {
		t.Parent = t.StepSpanID(ex.info.ID, ex.rt.generation, cmd.step, cmd.attempt)
	}
	return t
}
