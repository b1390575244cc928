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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// env is a store, a client and a running worker for one test.
type env struct {
	t      *testing.T
	store  *inmem.Store
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
	e := &env{t: t, store: inmem.New()}
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
		assert.NoError(e.t, e.worker.Run(ctx), "worker")
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
	var info backend.RunInfo
	require.EventuallyWithT(e.t, func(c *assert.CollectT) {
		var err error
		info, err = e.client.Describe(context.Background(), runID)
		require.NoError(c, err, "run %s", runID)
		assert.Equal(c, want, info.Status, "run %s: status; failure %+v", runID, info.Failure)
	}, 10*time.Second, 2*time.Millisecond)
	return info
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
	require.NoError(t, err)
	got, err := run.Result(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, 96, got)
	assert.Equal(t, 5, calls.get("double"), "activity runs")
	hist, err := e.client.History(ctxT(t), "chain-1")
	require.NoError(t, err)
	// started + 5 × (scheduled, completed) + completed
	if !assert.Equal(t, 12, len(hist), "history events") {
		for _, ev := range hist {
			t.Log(ev.Seq, ev.Type, ev.Step)
		}
	}
}

func TestStartIsIdempotent(t *testing.T) {
	wf := durable.NewWorkflow("echo", func(ctx durable.Context, s string) (string, error) { return s, nil })
	other := durable.NewWorkflow("other", func(ctx durable.Context, s string) (string, error) { return s, nil })
	e := newEnv(t, wf, other)
	ctx := ctxT(t)
	_, err := wf.Start(ctx, e.client, "r", "a")
	require.NoError(t, err)
	run, err := wf.Start(ctx, e.client, "r", "a")
	require.NoError(t, err, "same start again")
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "a", got)
	_, err = wf.Start(ctx, e.client, "r", "b")
	assert.ErrorIs(t, err, durable.ErrRunExists, "other input")
	_, err = other.Start(ctx, e.client, "r", "a")
	assert.ErrorIs(t, err, durable.ErrRunExists, "other workflow")
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
	_, _, err := store.CreateRun(ctx, info, entries[0])
	require.NoError(t, err)
	lease, err := store.Lease(ctx, info.ID, "dead-worker", time.Minute)
	require.NoError(t, err)
	info.Status = backend.StatusRunning
	require.NoError(t, store.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Events: entries[1:], Run: info, Release: true}))
}

// TestReplayAfterEveryEvent cuts a finished run's history after each of its
// events, lets a new worker finish it, and checks that the result is the
// same and that only the activities not completed in the cut were run.
func TestReplayAfterEveryEvent(t *testing.T) {
	ctx := ctxT(t)
	orig := newPizza(time.Millisecond)
	e := newEnv(t, orig.workflow)
	run, err := orig.workflow.Start(ctx, e.client, "pizza", "margherita")
	require.NoError(t, err)
	got, err := run.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, pizzaResult, got)
	entries, err := e.store.ReadHistory(ctx, "pizza", 1)
	require.NoError(t, err)
	history, err := backend.DecodeHistory(entries, 1, nil)
	require.NoError(t, err)
	info, _ := e.client.Describe(ctx, "pizza")

	for cut := 1; cut < len(entries); cut++ {
		t.Run(fmt.Sprintf("after_%d_%s", cut, history[cut-1].Type), func(t *testing.T) {
			p := newPizza(time.Millisecond)
			e := newIdleEnv(t)
			seedRun(t, e.store, backend.RunInfo{ID: "pizza", Workflow: info.Workflow, InputHash: info.InputHash}, entries[:cut])
			e.start(p.workflow)
			got, err := p.workflow.Get(e.client, "pizza").Result(ctxT(t))
			require.NoError(t, err)
			assert.Equal(t, pizzaResult, got)
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
				assert.Equal(t, want, p.calls.get(name), "%s runs", name)
				if scheduled[name] && !completed[name] {
					// Cut off mid-attempt: the retry is attempt 2 with
					// the key attempt 1 had.
					k1, _ := orig.keys.Load(name + "#1")
					k2, ok := p.keys.Load(name + "#2")
					assert.True(t, ok, "%s was not retried", name)
					assert.Equal(t, k1, k2, "%s retried with another key", name)
				}
			}
			final, err := e.client.History(ctxT(t), "pizza")
			require.NoError(t, err)
			require.GreaterOrEqual(t, len(final), cut, "events in the final history")
			for i := range cut {
				require.Equal(t, history[i].Type, final[i].Type, "event %d changed", i+1)
				require.Equal(t, history[i].Step, final[i].Step, "event %d changed", i+1)
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
	require.NoError(t, err)
	<-started
	stop()
	<-done
	// The lease lasts an hour: only a hand-off lets another worker go on.
	e.start(wf)
	got, err := run.Result(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, "done", got)
	attempt := <-started
	assert.Equal(t, 2, attempt, "the second worker's attempt")
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
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, 10, got)
	assert.Equal(t, int32(10), runs.Load(), "step runs: more means the lease lapsed and steps ran again")
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
	require.NoError(t, w.Drain(ctx))
	// With an hour's lease, the run finishes only if the worker retried.
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ok", got)
	assert.Equal(t, 1, calls.get("once"), "activity runs")
}
