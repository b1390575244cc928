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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, err)
	out, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "done", out)
	// Observers hear of the last write after the store accepted it.
	waitFor(t, "the last write observed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(written) > 0 && written[len(written)-1].Run.Status == backend.StatusCompleted &&
			written[len(written)-1].Run.ID == "p1"
	})
	want := backend.Trace{TraceID: caller.TraceID(), Parent: caller.SpanID(), Flags: trace.FlagsSampled}
	info, err := e.client.Describe(ctx, "p1")
	require.NoError(t, err)
	assert.Equal(t, want, info.Trace, "the record's trace")
	assert.Equal(t, 1, info.Generation, "the record's generation")
	history, err := e.client.History(ctx, "p1")
	require.NoError(t, err)
	require.NotEmpty(t, history)
	assert.Equal(t, want, history[0].Trace, "the trace of the next history's first event")

	// Activity attempts: generation 0 step 1 and generation 1 step 1,
	// attempts 1 and 2 each, each under its own derived span.
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, spans, 4, "activity runs")
	for i, s := range spans {
		gen := i / 2
		assert.Equal(t, want.TraceID, s.sc.TraceID(), "attempt %d of step %d (generation %d): trace", s.attempt, s.step, gen)
		assert.Equal(t, want.StepSpanID("p1", gen, s.step, s.attempt), s.sc.SpanID(), "attempt %d of step %d (generation %d): span", s.attempt, s.step, gen)
		assert.True(t, s.sc.IsSampled(), "attempt %d of step %d (generation %d) ran under %v", s.attempt, s.step, gen, s.sc)
	}
	assert.NotEqual(t, spans[0].sc.SpanID(), spans[1].sc.SpanID(), "two attempts share a span")

	// The child hangs under its step (2) of generation 0.
	children, err := e.client.ListRuns(ctx, backend.RunFilter{Workflow: "child"})
	require.NoError(t, err)
	require.Len(t, children, 1, "children")
	wantChild := backend.Trace{TraceID: want.TraceID, Parent: want.StepSpanID("p1", 0, 2, 0), Flags: want.Flags}
	assert.Equal(t, wantChild, children[0].Trace, "child trace")

	// Events that end work carry when it started.
	ends := 0
	for _, wr := range written {
		for _, ev := range append(wr.Previous, wr.Events...) {
			switch ev.Type {
			case backend.EventActivityAttemptFailed, backend.EventActivityCompleted, backend.EventChildCompleted:
				ends++
				assert.False(t, ev.Started.IsZero(), "%s of step %d has no start time", ev.Type, ev.Step)
				assert.False(t, ev.Started.After(ev.Time), "%s of step %d: started %v, after its time %v", ev.Type, ev.Step, ev.Started, ev.Time)
			case backend.EventActivityScheduled, backend.EventRunStarted:
				assert.True(t, ev.Started.IsZero(), "%s has a start time", ev.Type)
			}
		}
	}
	assert.Equal(t, 5, ends, "events that end work: 2 failed attempts, 2 completions, 1 child")
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
	require.NoError(t, err)
	e.waitStatus("s1", backend.StatusWaiting)
	require.NoError(t, wake.Send(ctx, e.client, "s1", "up"))
	_, err = run.Result(ctx)
	require.NoError(t, err)
	waitFor(t, "the last write observed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(replayed) >= 2 && replayed[len(replayed)-1]
	})
	mu.Lock()
	defer mu.Unlock()
	// The first write was made by the worker that started the run; the
	// run then waited, was let go, and was replayed for the signal.
	require.GreaterOrEqual(t, len(replayed), 2, "replayed flags %v", replayed)
	assert.False(t, replayed[0], "replayed flags %v; want false first", replayed)
	assert.True(t, replayed[len(replayed)-1], "replayed flags %v; want true last", replayed)
}

// TestLogsCarryTraceAndRunIDs: what a workflow logs through Logger names
// its run and its trace.
func TestLogsCarryTraceAndRunIDs(t *testing.T) {
	var logs syncbuf.Buffer
	info := runChatty(t, slog.NewJSONHandler(&logs, nil), "chatty-1")
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "hello from the workflow") {
			require.NoError(t, json.Unmarshal([]byte(l), &line))
		}
	}
	assert.Equal(t, "chatty-1", line["run_id"], "log line %v", line)
	assert.Equal(t, info.Trace.TraceID.String(), line["trace_id"], "log line %v", line)
}

// TestLogsHaveRunSpanInContext: what a workflow logs through Logger
// reaches the handler with the run's span in its context, which is where
// an OpenTelemetry log bridge takes a record's trace and span ids from.
func TestLogsHaveRunSpanInContext(t *testing.T) {
	h := &spanCapture{}
	info := runChatty(t, h, "chatty-2")
	sc, ok := h.of("hello from the workflow")
	require.True(t, ok, "the workflow's record was not logged")
	assert.Equal(t, info.Trace.TraceID, sc.TraceID(), "trace id in the record's context")
	assert.Equal(t, info.Trace.RunSpanID("chatty-2"), sc.SpanID(), "span id in the record's context: want the run's span")
}

// runChatty runs, to its end, a workflow that logs "hello from the
// workflow" through Logger, on a worker that logs to h, and returns the
// run's record.
func runChatty(t *testing.T, h slog.Handler, runID string) backend.RunInfo {
	t.Helper()
	wf := durable.NewWorkflow("chatty", func(ctx durable.Context, _ struct{}) (string, error) {
		durable.Logger(ctx).Info("hello from the workflow")
		return "ok", nil
	})
	e := newIdleEnv(t)
	w := durable.NewWorker(e.store, durable.WorkerOptions{Logger: slog.New(h)})
	w.Register(wf)
	ctx := ctxT(t)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	defer func() { cancel(); <-done }()
	run, err := wf.Start(ctx, e.client, runID, struct{}{})
	require.NoError(t, err)
	_, err = run.Result(ctx)
	require.NoError(t, err)
	info, err := e.client.Describe(ctx, runID)
	require.NoError(t, err)
	return info
}

// spanCapture is a slog.Handler that keeps the span context each message
// was handled with.
type spanCapture struct {
	mu    sync.Mutex
	spans map[string]trace.SpanContext
}

func (h *spanCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *spanCapture) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *spanCapture) WithGroup(string) slog.Handler            { return h }

func (h *spanCapture) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.spans == nil {
		h.spans = map[string]trace.SpanContext{}
	}
	h.spans[r.Message] = trace.SpanContextFromContext(ctx)
	return nil
}

func (h *spanCapture) of(msg string) (trace.SpanContext, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sc, ok := h.spans[msg]
	return sc, ok
}

// waitFor waits until cond holds, for up to 10 seconds. cond runs in
// another goroutine than the test's.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 2*time.Millisecond, "timed out waiting for %s", what)
}
