package evals_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/evals"
)

// recorder is a log processor that keeps the records it is given.
type recorder struct {
	mu      sync.Mutex
	records []sdklog.Record
}

func (r *recorder) OnEmit(_ context.Context, rec *sdklog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

func (r *recorder) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (r *recorder) Shutdown(context.Context) error                         { return nil }
func (r *recorder) ForceFlush(context.Context) error                       { return nil }

var _ sdklog.Processor = (*recorder)(nil)

func TestEmitEvents(t *testing.T) {
	rec := &recorder{}
	provider := sdklog.NewLoggerProvider(sdklog.WithProcessor(rec))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })

	r := sampleReport()
	r.Cases[1].Trials[1].ResponseID = "chatcmpl-42"
	tr := backend.Trace{TraceID: trace.TraceID{1, 2, 3}, Flags: trace.FlagsSampled}
	spans := func(runID string) trace.SpanContext {
		if runID == "eval-hours-3" {
			return trace.SpanContext{} // a run with no trace recorded
		}
		return evals.RunSpanContext(tr, runID)
	}
	outer := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{9}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), outer)
	evals.EmitEvents(ctx, provider.Logger("github.com/cairn-dev/cairn/evals"), r, spans)

	// 2 trials x 2 grades, 3 x 2, 1 graded trial of refund twice; the
	// trial that erred and the case that did not run emit nothing.
	require.Len(t, rec.records, 11)
	type event struct {
		runID   string
		attrs   map[string]any
		traceID trace.TraceID
		spanID  trace.SpanID
	}
	events := make([]event, len(rec.records))
	for i, rec := range rec.records {
		assert.Equal(t, evals.EvaluationEvent, rec.EventName())
		e := event{attrs: map[string]any{}, traceID: rec.TraceID(), spanID: rec.SpanID()}
		rec.WalkAttributes(func(kv attribute.KeyValue) bool {
			e.attrs[string(kv.Key)] = kv.Value.AsInterface()
			return true
		})
		e.runID, _ = e.attrs[evals.AttrRunID].(string)
		events[i] = e
	}

	curt := events[7] // opening hours, trial 2, judge
	assert.Equal(t, map[string]any{
		"gen_ai.evaluation.name":        "judge",
		"gen_ai.evaluation.score.value": 0.4,
		"gen_ai.evaluation.score.label": "curt",
		"gen_ai.evaluation.explanation": "The answer is curt:\nno greeting.",
		"gen_ai.response.id":            "chatcmpl-42",
		"cairn.eval.case":               "opening hours",
		"cairn.eval.trial":              int64(2),
		"cairn.run.id":                  "eval-hours-2",
	}, curt.attrs)
	assert.Equal(t, tr.TraceID, curt.traceID, "the event is in the run's trace")
	assert.Equal(t, tr.RunSpanID("eval-hours-2"), curt.spanID, "the event hangs under the run's span")

	first := events[0]
	assert.Equal(t, map[string]any{
		"gen_ai.evaluation.name":        "contains",
		"gen_ai.evaluation.score.value": 1.0,
		"gen_ai.evaluation.score.label": "pass",
		"cairn.eval.case":               "refund cold pizza",
		"cairn.eval.trial":              int64(1),
		"cairn.run.id":                  "eval-refund-1",
	}, first.attrs, "no explanation, no response id")
	assert.Equal(t, tr.RunSpanID("eval-refund-1"), first.spanID)

	for _, e := range events {
		if e.runID == "eval-hours-3" {
			assert.Equal(t, outer.SpanID(), e.spanID, "a run with no span: the span in ctx")
			assert.Equal(t, outer.TraceID(), e.traceID)
		}
	}
	assert.Equal(t, "trajectory", events[10].attrs[evals.AttrEvaluationName])
	assert.Equal(t, "fail", events[10].attrs[evals.AttrEvaluationScoreLabel])
}

// TestRunnerEmitsEvents: a runner with Events emits an evaluation event
// per grade, in the trace of the run started under the caller's span,
// hanging under that run's span, with the response id of its last model
// call.
func TestRunnerEmitsEvents(t *testing.T) {
	rec := &recorder{}
	provider := sdklog.NewLoggerProvider(sdklog.WithProcessor(rec))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	var s world
	r := &evals.Runner{Agent: supportAgent(t, &s, 2000, true), Events: provider.Logger("evals")}
	caller := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{7}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(evalCtx(t), caller)
	rep, err := r.Run(ctx, []evals.Case{{Name: "refund", Message: "refund please",
		Expect: evals.Expect{Contains: []string{"Refunded"}, Budget: &evals.Budget{Turns: 3}}}})
	require.NoError(t, err)
	trial := rep.Cases[0].Trials[0]
	require.Len(t, rec.records, 2, "one event per grade")
	want := backend.Trace{TraceID: caller.TraceID()}.RunSpanID(trial.RunID)
	for _, e := range rec.records {
		assert.Equal(t, evals.EvaluationEvent, e.EventName())
		assert.Equal(t, caller.TraceID(), e.TraceID(), "in the run's trace")
		assert.Equal(t, want, e.SpanID(), "under the run's span")
		var responseID string
		e.WalkAttributes(func(kv attribute.KeyValue) bool {
			if string(kv.Key) == evals.AttrResponseID {
				responseID = kv.Value.AsString()
			}
			return true
		})
		assert.Equal(t, "scripted-2", responseID)
	}
}
