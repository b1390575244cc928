package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/internal/syncbuf"
)

// TestRunTrace: a run started under a span joins its trace; its activities
// run under their attempts' derived spans, its child under the child's
// step, its next history (continue-as-new) keeps the trace; events that end
// work say when it started; observers learn whether the run was replayed.
func TestRunTrace(t *testing.T) {
	type seen struct {
		step, attempt int
		sc            trace.SpanContext
	}
	var mu sync.Mutex
	var spans []seen
	flaky := durable.NewActivity("flaky", func(ctx context.Context, _ struct{}) (string, error) {
		info, _ := durable.ActivityInfoFrom(ctx)
		mu.Lock()
		spans = append(spans, seen{info.Step, info.Attempt, trace.SpanContextFromContext(ctx)})
		mu.Unlock()
		if info.Attempt == 1 {
			return "", errors.New("try again")
		}
		return "ok", nil
	}, durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{InitialInterval: time.Millisecond}})
	child := durable.NewWorkflow("child", func(ctx durable.Context, _ struct{}) (string, error) {
		return "child done", nil
	})
	parent := durable.NewWorkflow("parent", func(ctx durable.Context, round int) (string, error) {
		if _, err := durable.Execute(ctx, flaky, struct{}{}); err != nil {
			return "", err
		}
		if round == 0 {
			if _, err := durable.ExecuteChild(ctx, child, struct{}{}); err != nil {
				return "", err
			}
			return "", durable.ContinueAsNew(ctx, 1)
		}
		return "done", nil
	})
	e := newIdleEnv(t)
	var written []durable.Written
	w := durable.NewWorker(e.store, durable.WorkerOptions{Logger: quietLogger(), LeaseTTL: 2 * time.Second,
		Observers: []durable.Observer{func(_ context.Context, wr durable.Written) {
			mu.Lock()
			defer mu.Unlock()
			written = append(written, wr)
		}}})
	w.Register(parent, child)
	ctx := ctxT(t)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	defer func() { cancel(); <-done }()

	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled})
	run, err := parent.Start(trace.ContextWithSpanContext(ctx, caller), e.client, "p1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run.Result(ctx); err != nil || out != "done" {
		t.Fatalf("result %q, %v", out, err)
	}
	// Observers hear of the last write after the store accepted it.
	waitFor(t, "the last write observed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(written) > 0 && written[len(written)-1].Run.Status == backend.StatusCompleted &&
			written[len(written)-1].Run.ID == "p1"
	})
	want := backend.Trace{TraceID: caller.TraceID(), Parent: caller.SpanID(), Flags: trace.FlagsSampled}
	info, err := e.client.Describe(ctx, "p1")
	if err != nil || info.Trace != want || info.Generation != 1 {
		t.Fatalf("record: trace %v generation %d (%v); want trace %v, generation 1", info.Trace, info.Generation, err, want)
	}
	history, err := e.client.History(ctx, "p1")
	if err != nil || history[0].Trace != want {
		t.Fatalf("the next history's first event has trace %v (%v); want %v", history[0].Trace, err, want)
	}

	// Activity attempts: generation 0 step 1 and generation 1 step 1,
	// attempts 1 and 2 each, each under its own derived span.
	mu.Lock()
	defer mu.Unlock()
	if len(spans) != 4 {
		t.Fatalf("activity ran %d times; want 4", len(spans))
	}
	for i, s := range spans {
		gen := i / 2
		if s.sc.TraceID() != want.TraceID || s.sc.SpanID() != want.StepSpanID("p1", gen, s.step, s.attempt) || !s.sc.IsSampled() {
			t.Errorf("attempt %d of step %d (generation %d) ran under %v", s.attempt, s.step, gen, s.sc)
		}
	}
	if spans[0].sc.SpanID() == spans[1].sc.SpanID() {
		t.Error("two attempts share a span")
	}

	// The child hangs under its step (2) of generation 0.
	children, err := e.client.ListRuns(ctx, backend.RunFilter{Workflow: "child"})
	if err != nil || len(children) != 1 {
		t.Fatalf("children %v, %v", children, err)
	}
	wantChild := backend.Trace{TraceID: want.TraceID, Parent: want.StepSpanID("p1", 0, 2, 0), Flags: want.Flags}
	if children[0].Trace != wantChild {
		t.Errorf("child trace %v; want %v", children[0].Trace, wantChild)
	}

	// Events that end work carry when it started.
	ends := 0
	for _, wr := range written {
		for _, ev := range append(wr.Previous, wr.Events...) {
			switch ev.Type {
			case backend.EventActivityAttemptFailed, backend.EventActivityCompleted, backend.EventChildCompleted:
				ends++
				if ev.Started.IsZero() || ev.Started.After(ev.Time) {
					t.Errorf("%s of step %d: started %v, time %v", ev.Type, ev.Step, ev.Started, ev.Time)
				}
			case backend.EventActivityScheduled, backend.EventRunStarted:
				if !ev.Started.IsZero() {
					t.Errorf("%s has a start time", ev.Type)
				}
			}
		}
	}
	if ends != 5 {
		t.Errorf("%d events end work; want 5 (2 failed attempts, 2 completions, 1 child)", ends)
	}
}

// TestReplayedWrites: a worker that picks a run up by replay says so.
func TestReplayedWrites(t *testing.T) {
	wake := durable.NewSignal[string]("wake")
	wf := durable.NewWorkflow("sleeper", func(ctx durable.Context, _ struct{}) (string, error) {
		if err := durable.Record(ctx, "ready", true); err != nil {
			return "", err
		}
		return wake.Receive(ctx)
	})
	e := newIdleEnv(t)
	var mu sync.Mutex
	var replayed []bool
	w := durable.NewWorker(e.store, durable.WorkerOptions{Logger: quietLogger(), LeaseTTL: 2 * time.Second,
		Observers: []durable.Observer{func(_ context.Context, wr durable.Written) {
			mu.Lock()
			defer mu.Unlock()
			replayed = append(replayed, wr.Replayed)
		}}})
	w.Register(wf)
	ctx := ctxT(t)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	defer func() { cancel(); <-done }()

	run, err := wf.Start(ctx, e.client, "s1", struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus("s1", backend.StatusWaiting)
	if err := wake.Send(ctx, e.client, "s1", "up"); err != nil {
		t.Fatal(err)
	}
	if _, err := run.Result(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the last write observed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(replayed) >= 2 && replayed[len(replayed)-1]
	})
	mu.Lock()
	defer mu.Unlock()
	// The first write was made by the worker that started the run; the
	// run then waited, was let go, and was replayed for the signal.
	if len(replayed) < 2 || replayed[0] || !replayed[len(replayed)-1] {
		t.Errorf("replayed flags %v; want false first, true last", replayed)
	}
}

// TestLogsCarryTraceAndRunIDs: what a workflow logs through Logger names
// its run and its trace.
func TestLogsCarryTraceAndRunIDs(t *testing.T) {
	wf := durable.NewWorkflow("chatty", func(ctx durable.Context, _ struct{}) (string, error) {
		durable.Logger(ctx).Info("hello from the workflow")
		return "ok", nil
	})
	e := newIdleEnv(t)
	var logs syncbuf.Buffer
	w := durable.NewWorker(e.store, durable.WorkerOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	w.Register(wf)
	ctx := ctxT(t)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	defer func() { cancel(); <-done }()
	run, err := wf.Start(ctx, e.client, "chatty-1", struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.Result(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := e.client.Describe(ctx, "chatty-1")
	if err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "hello from the workflow") {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line["run_id"] != "chatty-1" || line["trace_id"] != info.Trace.TraceID.String() {
		t.Errorf("log line %v; want run_id chatty-1 and trace_id %s", line, info.Trace.TraceID)
	}
}

// waitFor waits until cond holds, for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
