package durable_test

import (
	"context"
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

// observed collects what a worker's observer is told.
type observed struct {
	mu     sync.Mutex
	events []backend.Event
	status []backend.Status
}

func (o *observed) observe(_ context.Context, w durable.Written) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, w.Events...)
	o.status = append(o.status, w.Run.Status)
}

func (o *observed) seqs() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var s []int64
	for _, e := range o.events {
		s = append(s, e.Seq)
	}
	return s
}

// TestRecordWaitingStatusAndObservers: a workflow records what it asks a
// person, is listed as awaiting approval while it waits, and observers see
// each write once, even across a new worker that replays the run.
func TestRecordWaitingStatusAndObservers(t *testing.T) {
	decision := durable.NewSignal[bool]("decision")
	wf := durable.NewWorkflow("ask", func(ctx durable.Context, what string) (string, error) {
		if err := durable.Record(ctx, "asked", what); err != nil {
			return "", err
		}
		durable.SetWaitingStatus(ctx, backend.StatusAwaitingApproval)
		ok, err := decision.Receive(ctx)
		durable.SetWaitingStatus(ctx, "")
		if err != nil || !ok {
			return "rejected", err
		}
		if err := durable.Sleep(ctx, time.Millisecond); err != nil {
			return "", err
		}
		return "approved " + what, nil
	})
	store := inmem.New()
	client := durable.NewClient(store, durable.ClientOptions{})
	ctx := ctxT(t)
	var seen observed
	startWorker := func() (stop func()) {
		w := durable.NewWorker(store, durable.WorkerOptions{Logger: quietLogger(), LeaseTTL: 2 * time.Second,
			Observers: []durable.Observer{seen.observe}})
		w.Register(wf)
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(wctx) }()
		return func() { cancel(); <-done }
	}

	stop := startWorker()
	run, err := wf.Start(ctx, client, "ask-1", "refund")
	require.NoError(t, err)
	info := waitForStatus(t, client, "ask-1", backend.StatusAwaitingApproval)
	assert.Equal(t, "signal decision", info.Waiting, "waiting")
	stop()

	// A new worker replays the run when the decision arrives: the
	// observers hear only of what it writes.
	before := len(seen.seqs())
	defer startWorker()()
	require.NoError(t, decision.Send(ctx, client, "ask-1", true))
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "approved refund", got)
	history, err := client.History(ctx, "ask-1")
	require.NoError(t, err)
	// Observers hear of the last write after the store accepted it.
	waitFor(t, "the last write observed", func() bool { return len(seen.seqs()) >= len(history)-1 })
	seqs := seen.seqs()
	require.Len(t, seqs, len(history)-1, "observed seqs for a history of %d events", len(history))
	require.Greater(t, len(seqs), before, "observed seqs %v: none from the new worker", seqs)
	for i, s := range seqs {
		// The first event is written by the client.
		require.Equal(t, int64(i+2), s, "observed seqs %v: want 2, 3, ... once each", seqs)
	}
	rec := history[1]
	assert.Equal(t, backend.EventSideEffect, rec.Type, "record event %+v", rec)
	assert.Equal(t, "asked", rec.Name, "record event %+v", rec)
	assert.Equal(t, `"refund"`, string(rec.Payload), "record event %+v", rec)

	// Code that records another name at that step does not replay.
	changed := durable.NewWorkflow("ask", func(ctx durable.Context, what string) (string, error) {
		return "", durable.Record(ctx, "told", what)
	})
	var nd *durable.NondeterminismError
	assert.ErrorAs(t, durable.ReplayHistory(changed, history), &nd, "replay with another record name")
}

func waitForStatus(t *testing.T, c *durable.Client, runID string, want backend.Status) backend.RunInfo {
	t.Helper()
	var info backend.RunInfo
	require.EventuallyWithT(t, func(collect *assert.CollectT) {
		var err error
		info, err = c.Describe(context.Background(), runID)
		require.NoError(collect, err, "run %s", runID)
		assert.Equal(collect, want, info.Status, "run %s: status", runID)
	}, 10*time.Second, 2*time.Millisecond)
	return info
}

// TestObserversInOrderAcrossRelease: a run let go and taken up again at
// once by the same worker is told to observers in order: the next
// executor waits until the observers have heard of the write that let the
// run go, however slow they are.
func TestObserversInOrderAcrossRelease(t *testing.T) {
	wake := durable.NewSignal[int]("wake")
	wf := durable.NewWorkflow("sleepy", func(ctx durable.Context, _ struct{}) (int, error) {
		sum := 0
		for range 2 {
			n, err := wake.Receive(ctx)
			if err != nil {
				return 0, err
			}
			sum += n
		}
		return sum, nil
	})
	store := inmem.New()
	client := durable.NewClient(store, durable.ClientOptions{})
	ctx := ctxT(t)
	var mu sync.Mutex
	var seqs []int64
	var slowed atomic.Bool
	later := make(chan struct{}) // closed by the first observer call after the slow one
	var laterOnce sync.Once
	observer := func(_ context.Context, w durable.Written) {
		if w.Run.Status == backend.StatusWaiting && len(w.Events) > 0 && !slowed.Swap(true) {
			// The run was let go with the first signal: send the
			// second, and give a next executor time to write it
			// and tell the observers first, if it does not wait.
			assert.NoError(t, wake.Send(ctx, client, "sleepy-1", 2))
			select {
			case <-later:
			case <-time.After(200 * time.Millisecond):
			}
		} else if slowed.Load() {
			laterOnce.Do(func() { close(later) })
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range w.Events {
			seqs = append(seqs, e.Seq)
		}
	}
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: quietLogger(), Observers: []durable.Observer{observer}})
	w.Register(wf)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	defer func() { cancel(); <-done }()

	run, err := wf.Start(ctx, client, "sleepy-1", struct{}{})
	require.NoError(t, err)
	waitForStatus(t, client, "sleepy-1", backend.StatusWaiting)
	require.NoError(t, wake.Send(ctx, client, "sleepy-1", 1))
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, got)
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(seqs); i++ {
		require.Equal(t, seqs[i-1]+1, seqs[i], "observers heard of events %v: not in order", seqs)
	}
}
