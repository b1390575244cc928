package durable_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/memory"
)

// env is a store, a client and a running worker for one test.
type env struct {
	t      *testing.T
	store  *memory.Store
	client *durable.Client
	worker *durable.Worker
	cancel context.CancelFunc
	done   chan struct{}
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newEnv starts a worker with the workflows; it stops at the end of the test.
func newEnv(t *testing.T, wfs ...durable.WorkflowDefinition) *env {
	t.Helper()
	e := newIdleEnv(t)
	e.start(wfs...)
	return e
}

// newIdleEnv is an env with no worker yet.
func newIdleEnv(t *testing.T) *env {
	e := &env{t: t, store: memory.New()}
	e.client = durable.NewClient(e.store, durable.ClientOptions{})
	return e
}

// start starts a new worker on the env's store, stopping the previous one:
// a deploy of new code.
func (e *env) start(wfs ...durable.WorkflowDefinition) {
	e.stop()
	e.worker = durable.NewWorker(e.store, durable.WorkerOptions{Logger: quietLogger(), LeaseTTL: 2 * time.Second})
	e.worker.Register(wfs...)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go func() {
		defer close(e.done)
		if err := e.worker.Run(ctx); err != nil {
			e.t.Errorf("worker: %v", err)
		}
	}()
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitStatus waits until the run has the status.
func (e *env) waitStatus(runID string, want backend.Status) backend.RunInfo {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := e.client.Describe(context.Background(), runID)
		if err == nil && info.Status == want {
			return info
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s: status %q (%v), want %q; failure %+v", runID, info.Status, err, want, info.Failure)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// counter counts activity executions by key.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
	return c.n[key]
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func TestSequentialActivities(t *testing.T) {
	var calls counter
	double := durable.NewActivity("double", func(ctx context.Context, n int) (int, error) {
		calls.add("double")
		return 2 * n, nil
	})
	wf := durable.NewWorkflow("chain", func(ctx durable.Context, n int) (int, error) {
		for range 5 {
			var err error
			if n, err = durable.Execute(ctx, double, n); err != nil {
				return 0, err
			}
		}
		return n, nil
	})
	e := newEnv(t, wf)
	run, err := wf.Start(ctxT(t), e.client, "chain-1", 3)
	if err != nil {
		t.Fatal(err)
	}
	got, err := run.Result(ctxT(t))
	if err != nil || got != 96 {
		t.Fatalf("result = %d, %v; want 96", got, err)
	}
	if n := calls.get("double"); n != 5 {
		t.Errorf("activity ran %d times, want 5", n)
	}
	hist, err := e.client.History(ctxT(t), "chain-1")
	if err != nil {
		t.Fatal(err)
	}
	// started + 5 × (scheduled, completed) + completed
	if len(hist) != 12 {
		for _, ev := range hist {
			t.Log(ev.Seq, ev.Type, ev.Step)
		}
		t.Fatalf("history has %d events, want 12", len(hist))
	}
}

func TestStartIsIdempotent(t *testing.T) {
	wf := durable.NewWorkflow("echo", func(ctx durable.Context, s string) (string, error) { return s, nil })
	other := durable.NewWorkflow("other", func(ctx durable.Context, s string) (string, error) { return s, nil })
	e := newEnv(t, wf, other)
	ctx := ctxT(t)
	if _, err := wf.Start(ctx, e.client, "r", "a"); err != nil {
		t.Fatal(err)
	}
	run, err := wf.Start(ctx, e.client, "r", "a")
	if err != nil {
		t.Fatalf("same start again: %v", err)
	}
	if got, err := run.Result(ctx); err != nil || got != "a" {
		t.Fatalf("result = %q, %v", got, err)
	}
	if _, err := wf.Start(ctx, e.client, "r", "b"); !errors.Is(err, durable.ErrRunExists) {
		t.Errorf("other input: err = %v, want ErrRunExists", err)
	}
	if _, err := other.Start(ctx, e.client, "r", "a"); !errors.Is(err, durable.ErrRunExists) {
		t.Errorf("other workflow: err = %v, want ErrRunExists", err)
	}
}

// pizza is the seed scenario: four activities and a durable wait.
type pizzaSet struct {
	calls    counter
	keys     sync.Map // step -> idempotency keys seen
	workflow *durable.Workflow[string, string]
}

func newPizza(wait time.Duration) *pizzaSet {
	p := &pizzaSet{}
	act := func(name string) *durable.Activity[string, string] {
		return durable.NewActivity(name, func(ctx context.Context, in string) (string, error) {
			info, _ := durable.ActivityInfoFrom(ctx)
			p.calls.add(name)
			p.keys.Store(fmt.Sprintf("%s#%d", name, info.Attempt), info.IdempotencyKey)
			return name + "(" + in + ")", nil
		}, durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{InitialInterval: time.Millisecond}})
	}
	take, prepare, deliver, receipt := act("TakeOrder"), act("PreparePizza"), act("DeliverPizza"), act("SendReceipt")
	p.workflow = durable.NewWorkflow("PizzaOrder", func(ctx durable.Context, kind string) (string, error) {
		order, err := durable.Execute(ctx, take, kind)
		if err != nil {
			return "", err
		}
		pizza, err := durable.Execute(ctx, prepare, order)
		if err != nil {
			return "", err
		}
		if err := durable.Sleep(ctx, wait); err != nil {
			return "", err
		}
		delivered, err := durable.Execute(ctx, deliver, pizza)
		if err != nil {
			return "", err
		}
		return durable.Execute(ctx, receipt, delivered)
	})
	return p
}

const pizzaResult = "SendReceipt(DeliverPizza(PreparePizza(TakeOrder(margherita))))"

// seedRun writes a run whose history is entries, as a worker that died
// after writing them would have left it.
func seedRun(t *testing.T, store backend.Store, info backend.RunInfo, entries [][]byte) {
	t.Helper()
	ctx := ctxT(t)
	if _, _, err := store.CreateRun(ctx, info, entries[0]); err != nil {
		t.Fatal(err)
	}
	lease, err := store.Lease(ctx, info.ID, "dead-worker", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	info.Status = backend.StatusRunning
	if err := store.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Events: entries[1:], Run: info, Release: true}); err != nil {
		t.Fatal(err)
	}
}

// TestReplayAfterEveryEvent cuts a finished run's history after each of its
// events, lets a new worker finish it, and checks that the result is the
// same and that only the activities not completed in the cut were run.
func TestReplayAfterEveryEvent(t *testing.T) {
	ctx := ctxT(t)
	orig := newPizza(time.Millisecond)
	e := newEnv(t, orig.workflow)
	run, err := orig.workflow.Start(ctx, e.client, "pizza", "margherita")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := run.Result(ctx); err != nil || got != pizzaResult {
		t.Fatalf("result = %q, %v", got, err)
	}
	entries, err := e.store.ReadHistory(ctx, "pizza", 1)
	if err != nil {
		t.Fatal(err)
	}
	history, err := backend.DecodeHistory(entries, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := e.client.Describe(ctx, "pizza")

	for cut := 1; cut < len(entries); cut++ {
		t.Run(fmt.Sprintf("after_%d_%s", cut, history[cut-1].Type), func(t *testing.T) {
			p := newPizza(time.Millisecond)
			e := newIdleEnv(t)
			seedRun(t, e.store, backend.RunInfo{ID: "pizza", Workflow: info.Workflow, InputHash: info.InputHash}, entries[:cut])
			e.start(p.workflow)
			got, err := p.workflow.Get(e.client, "pizza").Result(ctxT(t))
			if err != nil || got != pizzaResult {
				t.Fatalf("result = %q, %v", got, err)
			}
			completed := map[string]bool{}
			scheduled := map[string]bool{}
			for _, ev := range history[:cut] {
				name := history[stepEvent(history, ev.Step)].Name
				switch ev.Type {
				case backend.EventActivityCompleted:
					completed[name] = true
				case backend.EventActivityScheduled:
					scheduled[name] = true
				}
			}
			for _, name := range []string{"TakeOrder", "PreparePizza", "DeliverPizza", "SendReceipt"} {
				want := 1
				if completed[name] {
					want = 0
				}
				if got := p.calls.get(name); got != want {
					t.Errorf("%s ran %d times, want %d", name, got, want)
				}
				if scheduled[name] && !completed[name] {
					// Cut off mid-attempt: the retry is attempt 2 with
					// the key attempt 1 had.
					k1, _ := orig.keys.Load(name + "#1")
					k2, ok := p.keys.Load(name + "#2")
					if !ok || k1 != k2 {
						t.Errorf("%s retried with key %v, want %v", name, k2, k1)
					}
				}
			}
			final, err := e.client.History(ctxT(t), "pizza")
			if err != nil {
				t.Fatal(err)
			}
			for i := range cut {
				if final[i].Type != history[i].Type || final[i].Step != history[i].Step {
					t.Fatalf("event %d changed: %s/%d, was %s/%d", i+1, final[i].Type, final[i].Step, history[i].Type, history[i].Step)
				}
			}
		})
	}
}

// stepEvent returns the index of the event that issued step.
func stepEvent(history []backend.Event, step int) int {
	for i, ev := range history {
		if ev.Step == step && ev.Type.IsCommand() {
			return i
		}
	}
	return 0
}

func TestStoppedWorkerHandsRunsOff(t *testing.T) {
	started := make(chan int, 2)
	slow := durable.NewActivity("slow", func(ctx context.Context, _ struct{}) (string, error) {
		info, _ := durable.ActivityInfoFrom(ctx)
		started <- info.Attempt
		if info.Attempt == 1 {
			<-ctx.Done() // cut off by the shutdown
			return "", ctx.Err()
		}
		return "done", nil
	})
	wf := durable.NewWorkflow("slowflow", func(ctx durable.Context, _ struct{}) (string, error) {
		return durable.Execute(ctx, slow, struct{}{})
	})
	e := newIdleEnv(t)
	first := durable.NewWorker(e.store, durable.WorkerOptions{Logger: quietLogger(), LeaseTTL: time.Hour})
	first.Register(wf)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- first.Run(ctx) }()
	run, err := wf.Start(ctxT(t), e.client, "slow", struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	stop()
	<-done
	// The lease lasts an hour: only a hand-off lets another worker go on.
	e.start(wf)
	if got, err := run.Result(ctxT(t)); err != nil || got != "done" {
		t.Fatalf("result = %q, %v", got, err)
	}
	if attempt := <-started; attempt != 2 {
		t.Errorf("second worker ran attempt %d, want 2", attempt)
	}
}

// TestLeaseRenewedWhileBusy runs a workflow whose steps each take less than
// the lease's renewal interval but, together, much longer than the lease:
// the worker must renew the lease across steps.
func TestLeaseRenewedWhileBusy(t *testing.T) {
	var runs atomic.Int32
	step := durable.NewActivity("step", func(ctx context.Context, n int) (int, error) {
		runs.Add(1)
		time.Sleep(80 * time.Millisecond)
		return n + 1, nil
	})
	wf := durable.NewWorkflow("busy", func(ctx durable.Context, n int) (int, error) {
		for range 10 {
			var err error
			if n, err = durable.Execute(ctx, step, n); err != nil {
				return 0, err
			}
		}
		return n, nil
	})
	e := newIdleEnv(t)
	ctx := ctxT(t)
	// Two workers: if the first lets its lease lapse, the second takes
	// the run over and repeats the step in flight.
	for range 2 {
		w := durable.NewWorker(e.store, durable.WorkerOptions{Logger: quietLogger(), LeaseTTL: 400 * time.Millisecond})
		w.Register(wf)
		wctx, stop := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- w.Run(wctx) }()
		t.Cleanup(func() { stop(); <-done })
	}
	run, _ := wf.Start(ctx, e.client, "busy", 0)
	if got, err := run.Result(ctx); err != nil || got != 10 {
		t.Fatalf("result = %d, %v", got, err)
	}
	if n := runs.Load(); n != 10 {
		t.Errorf("steps ran %d times, want 10: the lease lapsed and steps ran again", n)
	}
}

// flakyStore fails the first commits it is given, as a store whose server
// cannot be reached for a moment.
type flakyStore struct {
	backend.Store
	failures atomic.Int32
}

func (s *flakyStore) Commit(ctx context.Context, c backend.Commit) error {
	if s.failures.Add(-1) >= 0 {
		return errors.New("connection refused")
	}
	return s.Store.Commit(ctx, c)
}

func TestCommitRetriedAfterStoreBlip(t *testing.T) {
	var calls counter
	once := durable.NewActivity("once", func(ctx context.Context, s string) (string, error) {
		calls.add("once")
		return s, nil
	})
	wf := durable.NewWorkflow("blip", func(ctx durable.Context, s string) (string, error) {
		return durable.Execute(ctx, once, s)
	})
	e := newIdleEnv(t)
	flaky := &flakyStore{Store: e.store}
	flaky.failures.Store(2)
	w := durable.NewWorker(flaky, durable.WorkerOptions{Logger: quietLogger(), LeaseTTL: time.Hour})
	w.Register(wf)
	ctx := ctxT(t)
	run, _ := wf.Start(ctx, e.client, "blip", "ok")
	if err := w.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	// With an hour's lease, the run finishes only if the worker retried.
	if got, err := run.Result(ctx); err != nil || got != "ok" {
		t.Fatalf("result = %q, %v", got, err)
	}
	if calls.get("once") != 1 {
		t.Errorf("activity ran %d times", calls.get("once"))
	}
}
