package durable_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// tracedWorker runs a worker with Tracing on store until the test ends or
// the returned stop is called.
func tracedWorker(t *testing.T, store backend.Store, tp trace.TracerProvider, wfs ...durable.WorkflowDefinition) (stop func()) {
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: quietLogger(), LeaseTTL: 2 * time.Second,
		Tracing: &durable.Tracing{TracerProvider: tp, ExportInterval: 10 * time.Millisecond}})
	w.Register(wfs...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); assert.NoError(t, w.Run(ctx)) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func spanNamed(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// TestTracingPlainWorkflow: a workflow with no agent in it is traced: its
// run, each activity attempt (a failed one marked), its timer, the wait
// for its signal (from when it began to wait) and its child run, which
// hangs under its step; ids are the derived ones.
func TestTracingPlainWorkflow(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(durable.IDGenerator{}))
	flaky := durable.NewActivity("charge", func(ctx context.Context, _ struct{}) (string, error) {
		if info, _ := durable.ActivityInfoFrom(ctx); info.Attempt == 1 {
			return "", errors.New("gateway busy")
		}
		return "ok", nil
	}, durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{InitialInterval: time.Millisecond}})
	gate := durable.NewSignal[string]("go")
	child := durable.NewWorkflow("ship", func(ctx durable.Context, _ struct{}) (string, error) { return "shipped", nil })
	order := durable.NewWorkflow("order", func(ctx durable.Context, _ struct{}) (string, error) {
		if _, err := durable.Execute(ctx, flaky, struct{}{}); err != nil {
			return "", err
		}
		if err := durable.Sleep(ctx, 5*time.Millisecond); err != nil {
			return "", err
		}
		if _, err := gate.Receive(ctx); err != nil {
			return "", err
		}
		return durable.ExecuteChild(ctx, child, struct{}{})
	})
	store := inmem.New()
	client := durable.NewClient(store, durable.ClientOptions{})
	tracedWorker(t, store, tp, order, child)
	ctx := ctxT(t)
	run, err := order.Start(ctx, client, "o1", struct{}{})
	require.NoError(t, err)
	info := waitForStatus(t, client, "o1", backend.StatusWaiting)
	for info.Waiting != "signal go" {
		time.Sleep(time.Millisecond)
		info, _ = client.Describe(ctx, "o1")
	}
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, gate.Send(ctx, client, "o1", "now"))
	_, err = run.Result(ctx)
	require.NoError(t, err)
	waitFor(t, "the run's span", func() bool { return len(spanNamed(exp.GetSpans(), "run order")) == 1 })

	spans := exp.GetSpans()
	names := map[string]int{}
	for _, s := range spans {
		names[s.Name]++
	}
	assert.Equal(t, map[string]int{"run order": 1, "activity charge": 2, "timer": 1, "signal go": 1,
		"child ship": 1, "run ship": 1}, names, "spans")
	tr := info.Trace
	runSpan := spanNamed(spans, "run order")[0]
	assert.Equal(t, tr.RunSpanID("o1"), runSpan.SpanContext.SpanID(), "run span id")
	assert.False(t, runSpan.Parent.IsValid(), "a run started outside any span has a root span")
	attempts := spanNamed(spans, "activity charge")
	slices.SortFunc(attempts, func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	for i, s := range attempts {
		assert.Equal(t, tr.StepSpanID("o1", 0, 1, i+1), s.SpanContext.SpanID(), "attempt %d: span id", i+1)
		assert.Equal(t, runSpan.SpanContext.SpanID(), s.Parent.SpanID(), "attempt %d: parent", i+1)
	}
	assert.Equal(t, "Error", attempts[0].Status.Code.String(), "the failed attempt's status")
	assert.Equal(t, "Unset", attempts[1].Status.Code.String(), "the second attempt's status")
	sig := spanNamed(spans, "signal go")[0]
	assert.GreaterOrEqual(t, sig.EndTime.Sub(sig.StartTime), 5*time.Millisecond, "the signal's span: the wait for it")
	step, ship := spanNamed(spans, "child ship")[0], spanNamed(spans, "run ship")[0]
	assert.Equal(t, step.SpanContext.SpanID(), ship.Parent.SpanID(), "the child's run hangs under its step")
	assert.Equal(t, runSpan.SpanContext.TraceID(), ship.SpanContext.TraceID(), "the child is in its parent's trace")
}

// brokenFlush is a TracerProvider whose spans never reach the backend: its
// flushes fail, as when the worker dies with spans in its batch.
type brokenFlush struct{ *sdktrace.TracerProvider }

func (brokenFlush) ForceFlush(context.Context) error { return errors.New("collector unreachable") }

// TestTracingResendsUnexported: a worker whose spans were never exported
// let a run go; the worker that takes it up later emits them again, with
// their ids, once each, marked as resent. When they were exported (and
// marked), it emits none again.
func TestTracingResendsUnexported(t *testing.T) {
	for _, lost := range []bool{true, false} {
		name := map[bool]string{true: "Lost", false: "Exported"}[lost]
		t.Run(name, func(t *testing.T) {
			step := durable.NewActivity("step", func(ctx context.Context, n int) (int, error) { return n, nil })
			gate := durable.NewSignal[string]("go")
			wf := durable.NewWorkflow("steps", func(ctx durable.Context, _ struct{}) (int, error) {
				for i := range 3 {
					if _, err := durable.Execute(ctx, step, i); err != nil {
						return 0, err
					}
				}
				if _, err := gate.Receive(ctx); err != nil {
					return 0, err
				}
				return durable.Execute(ctx, step, 3)
			})
			store := inmem.New()
			client := durable.NewClient(store, durable.ClientOptions{})
			first := tracetest.NewInMemoryExporter()
			var tpA trace.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSyncer(first), sdktrace.WithIDGenerator(durable.IDGenerator{}))
			if lost {
				tpA = brokenFlush{tpA.(*sdktrace.TracerProvider)}
			}
			stopA := tracedWorker(t, store, tpA, wf)
			ctx := ctxT(t)
			run, err := wf.Start(ctx, client, "s1", struct{}{})
			require.NoError(t, err)
			waitForStatus(t, client, "s1", backend.StatusWaiting)
			stopA()
			info, err := client.Describe(ctx, "s1")
			require.NoError(t, err)
			if lost {
				assert.Zero(t, info.SpansExported, "spans marked exported after failed flushes")
			} else {
				assert.Equal(t, info.HistoryLen, info.SpansExported, "spans marked exported")
			}
			time.Sleep(50 * time.Millisecond) // past the grace of three export intervals

			second := tracetest.NewInMemoryExporter()
			tpB := sdktrace.NewTracerProvider(sdktrace.WithSyncer(second), sdktrace.WithIDGenerator(durable.IDGenerator{}))
			tracedWorker(t, store, tpB, wf)
			require.NoError(t, gate.Send(ctx, client, "s1", "on"))
			_, err = run.Result(ctx)
			require.NoError(t, err)
			waitFor(t, "the run's span", func() bool { return len(spanNamed(second.GetSpans(), "run steps")) == 1 })

			ids := map[trace.SpanID]string{}
			resent := 0
			for _, s := range second.GetSpans() {
				_, dup := ids[s.SpanContext.SpanID()]
				assert.False(t, dup, "span %s sent twice by the second worker", s.Name)
				ids[s.SpanContext.SpanID()] = s.Name
				for _, a := range s.Attributes {
					if a.Key == "cairn.resent" && a.Value.AsBool() {
						resent++
					}
				}
			}
			if lost {
				assert.Equal(t, 3, resent, "spans sent again")
				assert.Len(t, ids, 6, "spans: three steps again, the signal, the last step, the run: %v", ids)
				for _, s := range first.GetSpans() {
					assert.Contains(t, ids, s.SpanContext.SpanID(), "span %s of the first worker not sent again", s.Name)
				}
				return
			}
			assert.Zero(t, resent, "spans sent again")
			assert.Len(t, ids, 3, "spans: the signal, the last step, the run: %v", ids)
			for _, s := range first.GetSpans() {
				assert.NotContains(t, ids, s.SpanContext.SpanID(), "span %s sent by both workers", s.Name)
			}
		})
	}
}
