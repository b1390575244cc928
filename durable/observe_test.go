package durable_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/memory"
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
	store := memory.New()
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
	if err != nil {
		t.Fatal(err)
	}
	info := waitForStatus(t, client, "ask-1", backend.StatusAwaitingApproval)
	if info.Waiting != "signal decision" {
		t.Errorf("waiting = %q", info.Waiting)
	}
	stop()

	// A new worker replays the run when the decision arrives: the
	// observers hear only of what it writes.
	before := len(seen.seqs())
	defer startWorker()()
	if err := decision.Send(ctx, client, "ask-1", true); err != nil {
		t.Fatal(err)
	}
	if got, err := run.Result(ctx); err != nil || got != "approved refund" {
		t.Fatalf("result = %q, %v", got, err)
	}
	history, err := client.History(ctx, "ask-1")
	if err != nil {
		t.Fatal(err)
	}
	// Observers hear of the last write after the store accepted it.
	waitFor(t, "the last write observed", func() bool { return len(seen.seqs()) >= len(history)-1 })
	seqs := seen.seqs()
	if len(seqs) != len(history)-1 || len(seqs) <= before {
		t.Fatalf("observed seqs %v for a history of %d events", seqs, len(history))
	}
	for i, s := range seqs {
		if s != int64(i+2) { // the first event is written by the client
			t.Fatalf("observed seqs %v: want 2, 3, ... once each", seqs)
		}
	}
	rec := history[1]
	if rec.Type != backend.EventSideEffect || rec.Name != "asked" || string(rec.Payload) != `"refund"` {
		t.Errorf("record event = %+v", rec)
	}

	// Code that records another name at that step does not replay.
	changed := durable.NewWorkflow("ask", func(ctx durable.Context, what string) (string, error) {
		return "", durable.Record(ctx, "told", what)
	})
	var nd *durable.NondeterminismError
	if err := durable.ReplayHistory(changed, history); !errors.As(err, &nd) {
		t.Errorf("replay with another record name: %v, want a NondeterminismError", err)
	}
}

func waitForStatus(t *testing.T, c *durable.Client, runID string, want backend.Status) backend.RunInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.Describe(context.Background(), runID)
		if err == nil && info.Status == want {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: status %s, want %s (%v)", runID, info.Status, want, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
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
	store := memory.New()
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
			if err := wake.Send(ctx, client, "sleepy-1", 2); err != nil {
				t.Error(err)
			}
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
	if err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, client, "sleepy-1", backend.StatusWaiting)
	if err := wake.Send(ctx, client, "sleepy-1", 1); err != nil {
		t.Fatal(err)
	}
	if got, err := run.Result(ctx); err != nil || got != 3 {
		t.Fatalf("result %d, %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("observers heard of events %v: not in order", seqs)
		}
	}
}
