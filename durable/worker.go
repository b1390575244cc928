package durable

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Observer is told what a worker wrote to a run, after the store accepted
// it. Only writes are observed, never replay: a run picked up again, by
// this worker or another after a crash, is not told again of what its
// history holds. A worker that dies between a write and its observers
// loses that notification, so an Observer feeds views (live progress,
// traces, metrics), not the truth, which is the history.
//
// An Observer is called from the goroutine that executes the run, so it
// must return quickly; it must not modify the events.
type Observer func(ctx context.Context, w Written)

// Written is one write a worker made to a run.
type Written struct {
	// Run is the run's record as written.
	Run backend.RunInfo
	// Events are the events appended, in history order: none when only
	// the record changed, as when a run is parked or handed off; the new
	// history from its first event when the run continued as new.
	Events []backend.Event
	// Previous are, when the run continued as new, the events of the
	// history it ended that were never written: that history was replaced
	// before they were (they belong to generation Run.Generation-1).
	// This is their only notice.
	Previous []backend.Event
	// Replayed says the worker rebuilt the run by replaying its history
	// (it picked the run up after a crash, a hand-off or a wait) rather
	// than keeping it in memory since it started.
	Replayed bool
}

// WorkerOptions configure a Worker. Zero fields take the defaults noted.
type WorkerOptions struct {
	// ID names the worker in leases; it must be unique among live
	// workers. Default: host name, process id and a random suffix.
	ID string
	// MaxRuns caps the runs the worker executes at once. Default 100.
	MaxRuns int
	// LeaseTTL is how long a run's lease lasts without renewal: the time
	// after which another worker takes over the runs of a worker that
	// died. The worker renews leases every third of it. Default 30s.
	LeaseTTL time.Duration
	// Clock tells time. Default: backend.SystemClock.
	Clock backend.Clock
	// Logger receives the worker's logs. Default: slog.Default.
	Logger *slog.Logger
	// Codec transforms payloads at rest; clients must use the same.
	Codec backend.Codec
	// ActivityMiddleware wraps every activity call, the first outermost.
	ActivityMiddleware []ActivityMiddleware
	// TaskQueues are the activity task queues the worker serves, running
	// the activities registered with RegisterActivities. A worker with no
	// workflows registered serves only these and takes no runs.
	TaskQueues []string
	// Observers are told of every write the worker makes to a run's
	// history, after the store accepted it.
	Observers []Observer
	// Tracing, if set, makes the worker emit spans of what it commits;
	// see Tracing.
	Tracing *Tracing
	// MaxActivities caps the queued attempts the worker runs at once.
	// Default 100.
	MaxActivities int
}

// Worker executes runs: it takes tasks from the store, holds the lease of
// each run it executes, replays and advances its workflow, and runs its
// activities. Any number of workers may share a store; a run is executed by
// one at a time, and the runs of a worker that dies are taken over by others
// once their leases expire.
type Worker struct {
	store      backend.Store
	client     *Client
	id         string
	maxRuns    int
	leaseTTL   time.Duration
	clock      backend.Clock
	log        *slog.Logger
	codec      backend.Codec
	observers  []Observer
	tracer     *tracer // nil: no spans
	middleware []ActivityMiddleware
	workflows  map[string]workflowDef
	queues     []string
	activities map[string]activityDef

	mu     sync.Mutex
	active map[string]*executor
	// observing holds, for a run whose executor let it go and is still
	// telling the observers, a channel closed when it is done: the next
	// executor of the run waits for it, so that observers hear of a
	// run's writes in order.
	observing map[string]chan struct{}
	// serving counts queued attempts being run.
	serving       int
	activitySlots chan struct{}
	// idle is signaled when an executor ends.
	idle  chan struct{}
	slots chan struct{}
	wg    sync.WaitGroup
}

// NewWorker returns a worker for store. Register workflows before Run.
func NewWorker(s backend.Store, opts WorkerOptions) *Worker {
	w := &Worker{
		store:      s,
		id:         opts.ID,
		maxRuns:    opts.MaxRuns,
		leaseTTL:   opts.LeaseTTL,
		clock:      opts.Clock,
		log:        opts.Logger,
		codec:      opts.Codec,
		observers:  opts.Observers,
		middleware: opts.ActivityMiddleware,
		workflows:  map[string]workflowDef{},
		queues:     opts.TaskQueues,
		activities: map[string]activityDef{},
		active:     map[string]*executor{},
		observing:  map[string]chan struct{}{},
		idle:       make(chan struct{}, 1),
	}
	if w.id == "" {
		host, _ := os.Hostname()
		w.id = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomID()[:8])
	}
	if w.maxRuns <= 0 {
		w.maxRuns = 100
	}
	if w.leaseTTL <= 0 {
		w.leaseTTL = 30 * time.Second
	}
	if w.clock == nil {
		w.clock = backend.SystemClock()
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.log = w.log.With("worker", w.id)
	if t := opts.Tracing; t != nil && t.TracerProvider != nil {
		w.tracer = newTracer(t, w.log, s, w.leaseTTL)
	}
	w.slots = make(chan struct{}, w.maxRuns)
	w.activitySlots = make(chan struct{}, cmp.Or(max(opts.MaxActivities, 0), 100))
	w.client = NewClient(s, ClientOptions{Codec: w.codec, Clock: w.clock})
	return w
}

// ID returns the worker's id.
func (w *Worker) ID() string { return w.id }

// Register makes workflows runnable by the worker. It panics if two have
// the same name, as registering is done once at start-up.
func (w *Worker) Register(workflows ...WorkflowDefinition) {
	for _, wf := range workflows {
		def := wf.workflow()
		if _, dup := w.workflows[def.name]; dup {
			panic(fmt.Sprintf("durable: workflow %q registered twice", def.name))
		}
		w.workflows[def.name] = def
	}
}

// RegisterActivities makes activities runnable from the worker's task
// queues. It panics if two have the same name.
func (w *Worker) RegisterActivities(activities ...ActivityDefinition) {
	for _, a := range activities {
		def := a.activity()
		if _, dup := w.activities[def.name]; dup {
			panic(fmt.Sprintf("durable: activity %q registered twice", def.name))
		}
		w.activities[def.name] = def
	}
}

// Run executes runs until ctx is done, then hands the runs it holds off to
// other workers (their activity attempts in flight are cut off and run
// again, with the same idempotency keys) and returns nil. At start it retries the parked runs of its
// workflows: deploying fixed code un-parks them.
func (w *Worker) Run(ctx context.Context) error {
	defer w.stopped(ctx)
	if len(w.queues) > 0 {
		w.wg.Go(func() { w.serveQueues(ctx) })
	}
	if w.tracer != nil {
		w.wg.Go(func() { w.tracer.exportEvery(ctx) })
	}
	if len(w.workflows) == 0 && len(w.queues) > 0 {
		<-ctx.Done()
		return nil
	}
	w.retryParked(ctx)
	for {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		task, err := w.store.Poll(ctx, w.id)
		if err != nil {
			<-w.slots
			if ctx.Err() != nil {
				return nil
			}
			w.log.Error("poll", "err", err)
			w.sleep(ctx, time.Second)
			continue
		}
		w.dispatch(ctx, task, false)
	}
}

// Drain executes runs until none is ready and none is executing, then
// returns. It suits tests and batch jobs; a service calls Run. Drain must
// not be called while Run or another Drain runs on the same worker.
func (w *Worker) Drain(ctx context.Context) error {
	done, cancel := context.WithCancel(ctx)
	cancel()
	defer w.stopped(ctx)
	for {
		if ran, err := w.takeReady(ctx, done); err != nil || ran {
			if err != nil {
				return err
			}
			continue
		}
		w.mu.Lock()
		busy := len(w.active) > 0 || w.serving > 0
		w.mu.Unlock()
		if !busy {
			// Executors write before they leave, so one more look sees
			// all they left behind.
			if ran, err := w.takeReady(ctx, done); err != nil || ran {
				if err != nil {
					return err
				}
				continue
			}
			return nil
		}
		select {
		case <-w.idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stopped waits for the worker's goroutines to end, then exports the spans
// left to export.
func (w *Worker) stopped(ctx context.Context) {
	w.wg.Wait()
	if w.tracer != nil {
		w.tracer.exportLast(ctx)
	}
}

// takeReady starts one ready run task or queued attempt, if there is one,
// without waiting (done is a done context).
func (w *Worker) takeReady(ctx, done context.Context) (bool, error) {
	task, err := w.store.Poll(done, w.id)
	if err == nil {
		w.slots <- struct{}{}
		w.dispatch(ctx, task, false)
		return true, nil
	}
	if !errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return false, fmt.Errorf("poll: %w", err)
	}
	q, ok := w.store.(backend.ActivityQueue)
	if len(w.queues) == 0 || !ok {
		return false, nil
	}
	at, err := q.PollActivity(done, w.id, w.queues)
	if err == nil {
		w.activitySlots <- struct{}{}
		w.serveAttempt(ctx, q, at)
		return true, nil
	}
	if !errors.Is(err, context.Canceled) {
		return false, fmt.Errorf("poll activity: %w", err)
	}
	return false, nil
}

// dispatch hands a task to the executor of its run, or starts one. It owns
// one slot, which it gives back when the run is let go. Parked runs are
// executed only when retryParked is set.
func (w *Worker) dispatch(ctx context.Context, task backend.Task, retryParked bool) {
	w.mu.Lock()
	if ex := w.active[task.RunID]; ex != nil {
		w.mu.Unlock()
		notify(ex.poke)
		<-w.slots
		w.ack(ctx, task)
		return
	}
	ex := &executor{w: w, runID: task.RunID, log: w.log.With("run_id", task.RunID),
		results: make(chan attemptResult), poke: make(chan struct{}, 1), done: make(chan struct{}),
		running: map[int]context.CancelCauseFunc{}}
	w.active[task.RunID] = ex
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() {
			w.detach(ex)
			<-w.slots
			notify(w.idle)
		}()
		if err := w.execute(ctx, ex, task, retryParked); err != nil && ctx.Err() == nil {
			ex.log.Warn("run let go", "err", err)
		}
	}()
}

// observe begins telling the observers of a run that is let go; the
// function it returns ends it. A new executor of the run waits for it.
func (w *Worker) observe(runID string) (done func()) {
	ch := make(chan struct{})
	w.mu.Lock()
	w.observing[runID] = ch
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		if w.observing[runID] == ch {
			delete(w.observing, runID)
		}
		w.mu.Unlock()
		close(ch)
	}
}

// detach forgets an executor that is letting its run go, so that news for
// the run from now on starts a new executor (which waits for the lease)
// instead of poking one that will not look.
func (w *Worker) detach(ex *executor) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.active[ex.runID] == ex {
		delete(w.active, ex.runID)
	}
}

// execute takes a run's lease and runs it until it is let go.
func (w *Worker) execute(ctx context.Context, ex *executor, task backend.Task, retryParked bool) error {
	w.mu.Lock()
	prev := w.observing[task.RunID]
	w.mu.Unlock()
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		w.giveBack(task)
		return ctx.Err()
	}
	lease, err := w.store.Lease(ctx, task.RunID, w.id, w.leaseTTL)
	if errors.Is(err, backend.ErrLeaseHeld) {
		// Another worker has the run. It sees the inbox when it renews
		// or releases; the task comes back if that worker died.
		return nil
	}
	w.ack(ctx, task)
	if errors.Is(err, backend.ErrRunNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("take lease: %w", err)
	}
	info, err := w.store.GetRun(ctx, task.RunID)
	if err != nil {
		return fmt.Errorf("get run: %w", err)
	}
	ex.lease, ex.info = lease, info
	if info.Status == backend.StatusParked && !retryParked {
		resumes, err := w.resumeRequests(ctx, info.ID)
		if err != nil {
			return err
		}
		if len(resumes) == 0 {
			// News for a parked run waits for it to be retried.
			return w.store.Commit(ctx, backend.Commit{Lease: lease, Expect: info.HistoryLen, Run: info, Release: true})
		}
		w.log.Info("resuming parked run", "run_id", info.ID)
		// The requests are answered by this attempt, whether the run
		// goes on or parks again.
		ex.resumes, ex.consumed = resumes, slices.Clone(resumes)
	}
	if info.Status.Terminal() {
		// Ended: a child whose parent may not have been told, or a
		// stale task.
		return w.finishEnded(ctx, lease, info)
	}
	return ex.run(ctx)
}

// finishEnded tells the parent of an ended child run, if it has one, and
// releases the run; when the worker traces, it first sends the spans its
// last worker may not have exported, and releases the run once they are.
func (w *Worker) finishEnded(ctx context.Context, lease backend.Lease, info backend.RunInfo) error {
	if w.tracer != nil {
		if err := w.tracer.resendEnded(ctx, w.codec, lease, info, w.clock.Now()); err != nil {
			return err
		}
	}
	if info.ParentID == "" {
		if w.tracer.holdsEnded() {
			w.tracer.releaseAfterExport(lease, info)
			return nil
		}
		return w.store.Commit(ctx, backend.Commit{Lease: lease, Expect: info.HistoryLen, Run: info, Release: true})
	}
	entries, err := w.store.ReadHistory(ctx, info.ID, info.HistoryLen)
	if err != nil {
		return fmt.Errorf("read end of history: %w", err)
	}
	end, err := backend.DecodeHistory(entries, info.HistoryLen, w.codec)
	if err != nil || len(end) != 1 {
		return fmt.Errorf("read end of history: %w", errors.Join(err, backend.ErrCorruptHistory))
	}
	return w.notifyParent(ctx, lease, info, info.HistoryLen, end[0])
}

// notifyParent sends the outcome of a child run to its parent's inbox and
// then releases the child.
func (w *Worker) notifyParent(ctx context.Context, lease backend.Lease, info backend.RunInfo, committed int64, outcome backend.Event) error {
	msg := backend.Event{Type: backend.EventChildCompleted, Step: info.ParentStep, RunID: info.ID,
		Payload: outcome.Payload, Failure: outcome.Failure}
	if err := w.client.send(ctx, info.ParentID, msg); err != nil && !errors.Is(err, ErrRunEnded) {
		return fmt.Errorf("tell parent %s: %w", info.ParentID, err)
	}
	info, err := w.store.GetRun(ctx, info.ID)
	if err != nil {
		return err
	}
	if w.tracer.holdsEnded() {
		w.tracer.releaseAfterExport(lease, info)
		return nil
	}
	return w.store.Commit(ctx, backend.Commit{Lease: lease, Expect: committed, Run: info, Release: true})
}

// giveBack returns the run of a task it polled to the store unexecuted,
// for a worker that is stopping: it takes the run's lease and releases it
// at once, due now, so that the store queues the run again for whatever
// the task was about (news in its inbox, a due time, a dead worker's
// lease), and acknowledges the task. Left unacknowledged, the task would
// wait for the store's visibility timeout (30 s by default) before another
// worker got it; a test found a run stuck that long.
func (w *Worker) giveBack(task backend.Task) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lease, err := w.store.Lease(ctx, task.RunID, w.id, w.leaseTTL)
	if errors.Is(err, backend.ErrLeaseHeld) {
		return // its holder sees the news; the task comes back if it died
	}
	if err == nil {
		var info backend.RunInfo
		if info, err = w.store.GetRun(ctx, task.RunID); err == nil {
			if !info.Status.Dormant() {
				info.WakeAt = w.clock.Now()
			}
			err = w.store.Commit(ctx, backend.Commit{Lease: lease, Expect: info.HistoryLen, Run: info, Release: true})
		}
	}
	if err != nil && !errors.Is(err, backend.ErrRunNotFound) {
		w.log.Warn("give run back", "run_id", task.RunID, "err", err)
		return // unacknowledged: delivered again after the visibility timeout
	}
	w.ack(ctx, task)
}

func (w *Worker) ack(ctx context.Context, task backend.Task) {
	if err := w.store.Ack(ctx, task); err != nil {
		w.log.Warn("ack task", "run_id", task.RunID, "err", err)
	}
}

// resumeRequests returns the ids of the entries of a parked run's inbox
// that ask for it to be tried again (Client.Resume).
func (w *Worker) resumeRequests(ctx context.Context, runID string) ([]string, error) {
	entries, err := w.store.ReadInbox(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("read inbox: %w", err)
	}
	var ids []string
	for _, entry := range entries {
		if e, err := backend.DecodeEvent(entry.Event, w.codec); err == nil && e.Type == backend.EventResumeRequested {
			ids = append(ids, entry.ID)
		}
	}
	return ids, nil
}

// retryParked tries the parked runs of the registered workflows again.
func (w *Worker) retryParked(ctx context.Context) {
	parked, err := w.store.ListRuns(ctx, backend.RunFilter{Status: backend.StatusParked})
	if err != nil {
		w.log.Error("list parked runs", "err", err)
		return
	}
	for _, run := range parked {
		if _, ok := w.workflows[run.Workflow]; !ok {
			continue
		}
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		w.log.Info("retrying parked run", "run_id", run.ID)
		w.dispatch(ctx, backend.Task{RunID: run.ID}, true)
	}
}

// wrap applies the activity middleware to fn.
func (w *Worker) wrap(fn ActivityFunc) ActivityFunc {
	for i := len(w.middleware) - 1; i >= 0; i-- {
		fn = w.middleware[i](fn)
	}
	return fn
}

func (w *Worker) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
