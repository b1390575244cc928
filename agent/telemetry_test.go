package agent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/internal/syncbuf"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// telemetryEnv is an env whose runtime reports to an in-memory exporter
// and a manual metric reader.
type telemetryEnv struct {
	*env
	spans   *tracetest.InMemoryExporter
	tp      *sdktrace.TracerProvider
	metrics *sdkmetric.ManualReader
}

func newTelemetryEnv(t *testing.T, content bool, agents ...*agent.Agent) *telemetryEnv {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans), sdktrace.WithIDGenerator(durable.IDGenerator{}))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	e := newEnvOn(t, inmem.New(), agent.Options{TracerProvider: tp, MeterProvider: mp, RecordContent: content}, agents...)
	return &telemetryEnv{env: e, spans: spans, tp: tp, metrics: reader}
}

// tracedAgent calls, in its first turn, a lookup that fails once, a refund
// that needs approval, a durable wait, and a slow tool whose first attempt
// blocks until its worker stops; then it answers.
func tracedAgent(t *testing.T, slowStarted chan<- struct{}) *agent.Agent {
	var lookups, slows atomic.Int64
	lookup := tools.MustNew("lookup", "look an order up", func(ctx context.Context, in orderArgs) (string, error) {
		if lookups.Add(1) == 1 {
			return "", tools.Retryable(errors.New("database busy"))
		}
		return "order " + in.Order + " is paid", nil
	}, fastRetry)
	refund := tools.MustNew("refund", "refund an order", func(ctx context.Context, in refundArgs) (string, error) {
		return "refunded", nil
	}, tools.RequireApprovalIf(func(in refundArgs) bool { return in.Amount > 100 }))
	slow := tools.MustNew("slow", "take a while", func(ctx context.Context, in orderArgs) (string, error) {
		if slows.Add(1) == 1 {
			slowStarted <- struct{}{}
			<-ctx.Done() // cut off: its worker stops
			return "", ctx.Err()
		}
		return "slow done", nil
	}, fastRetry)
	wait := agent.MustNewWorkflowTool("wait", "wait a while", func(ctx durable.Context, in orderArgs) (string, error) {
		return "waited", durable.Sleep(ctx, 20*time.Millisecond)
	})
	first := toolTurn(call("lookup", `{"order":"A1"}`), call("refund", `{"order":"A1","amount":500}`),
		call("wait", `{"order":"A1"}`), call("slow", `{"order":"A1"}`))
	first.ID, first.Model, first.Usage = "resp-1", "scripted-2026", providers.Usage{InputTokens: 100, OutputTokens: 20}
	last := answer("Done.")
	last.ID, last.Model, last.Usage = "resp-2", "scripted-2026", providers.Usage{InputTokens: 150, OutputTokens: 5}
	_, model := script(first, last)
	return &agent.Agent{Name: "traced", Description: "refunds orders", Instructions: "Refund orders.", Model: model,
		Tools: mustSet(t, lookup, refund, slow), WorkflowTools: []*agent.WorkflowTool{wait}, ModelOptions: fastModel}
}

// TestTraceOfARun: a run started under a caller's span, cut off by a
// worker stop while a tool runs and while it awaits approval, and finished
// by another worker, is one trace under the caller's span: one span per
// model call, tool attempt, wait and approval, each once, with the GenAI
// attributes, ids derived from the run's steps, the lost attempt reported.
func TestTraceOfARun(t *testing.T) {
	slowStarted := make(chan struct{}, 1)
	a := tracedAgent(t, slowStarted)
	e := newTelemetryEnv(t, false, a)
	ctx := ctxT(t)

	callerCtx, caller := e.tp.Tracer("test").Start(ctx, "handle request")
	_, err := e.rt.Start(callerCtx, a, "traced-1", agent.Input{Message: "Refund A1."})
	require.NoError(t, err)
	caller.End()
	<-slowStarted
	var pending []agent.PendingCall
	eventually(t, "the approval request", func() bool {
		var err error
		pending, err = e.rt.Pending(ctx, agent.PendingFilter{RunID: "traced-1"})
		return err == nil && len(pending) == 1
	})
	eventually(t, "the lookup's result in history", func() bool {
		for _, ev := range e.history("traced-1") {
			if ev.Type == backend.EventActivityCompleted && ev.Name == "tool:traced/lookup" {
				return true
			}
		}
		return false
	})
	e.halt() // the slow tool's attempt is cut off
	e.start()
	require.NoError(t, e.rt.Decide(ctx, "traced-1", agent.Decision{CallID: pending[0].CallID, Approved: true, By: "alice", Reason: "fine"}))
	res, err := e.rt.Run("traced-1").Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "Done.", res.Text)
	info, err := e.rt.Run("traced-1").Describe(ctx)
	require.NoError(t, err)

	// Observers hear of a write after the store accepted it: the last
	// write brings the run's span.
	eventually(t, "the run's span", func() bool { return slices.Contains(names(e.spans.GetSpans()), "invoke_agent traced") })
	spans := e.spans.GetSpans()
	assert.Len(t, names(spans), 12, "spans")
	byName := map[string][]tracetest.SpanStub{}
	ids := map[trace.SpanID]string{}
	var runSpan tracetest.SpanStub
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
		other, dup := ids[s.SpanContext.SpanID()]
		assert.False(t, dup, "span %s has the id of %s", s.Name, other)
		ids[s.SpanContext.SpanID()] = s.Name
		assert.Equal(t, caller.SpanContext().TraceID(), s.SpanContext.TraceID(), "span %s is not in the caller's trace", s.Name)
		if s.Name == "invoke_agent traced" {
			runSpan = s
		}
	}
	want := map[string]int{"handle request": 1, "invoke_agent traced": 1, "chat scripted": 2,
		"execute_tool lookup": 2, "execute_tool refund": 1, "execute_tool slow": 2, "execute_tool wait": 1,
		"timer": 1, "await_approval refund": 1}
	for name, n := range want {
		assert.Equal(t, n, len(byName[name]), "spans %q", name)
	}

	// The run's span hangs under the caller's; every other under the
	// run's, but the workflow tool's timer, which hangs under the tool's
	// span, whose id derives from the step of the record of its start.
	opened := 0
	for _, ev := range e.history("traced-1") {
		if ev.Type == backend.EventSideEffect && ev.Name == "workflow_tool_started" {
			opened = ev.Step
		}
	}
	require.NotZero(t, opened, "no workflow_tool_started in history")
	require.Len(t, byName["execute_tool wait"], 1, "workflow tool spans")
	tool := byName["execute_tool wait"][0]
	assert.Equal(t, caller.SpanContext().SpanID(), runSpan.Parent.SpanID(), "the run's span should hang under the caller's")
	assert.Equal(t, info.Trace.RunSpanID("traced-1"), runSpan.SpanContext.SpanID(), "the run's span should have the id derived from the run")
	wantAttrs(t, runSpan, map[string]any{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "traced",
		"gen_ai.agent.description": "refunds orders", "gen_ai.conversation.id": "traced-1",
		"gen_ai.provider.name": "cairn.scripted", "gen_ai.request.model": "scripted",
		"gen_ai.usage.input_tokens": int64(250), "gen_ai.usage.output_tokens": int64(25), "cairn.run.status": "completed"})
	assert.True(t, runSpan.StartTime.Equal(info.CreatedAt), "the run's span starts at %v; the run was created at %v", runSpan.StartTime, info.CreatedAt)
	assert.False(t, runSpan.EndTime.Before(runSpan.StartTime), "the run's span runs from %v to %v", runSpan.StartTime, runSpan.EndTime)
	for _, s := range spans {
		if s.Name == "handle request" || s.Name == runSpan.Name {
			continue
		}
		parent := runSpan
		if s.Name == "timer" {
			parent = tool
		}
		assert.Equal(t, parent.SpanContext.SpanID(), s.Parent.SpanID(), "span %s hangs under %s, not %s", s.Name, ids[s.Parent.SpanID()], parent.Name)
		step, attempt := intAttr(s, "cairn.step"), intAttr(s, "cairn.attempt")
		if s.Name == tool.Name {
			step = int64(opened)
		}
		assert.Equal(t, info.Trace.StepSpanID("traced-1", 0, int(step), int(attempt)), s.SpanContext.SpanID(),
			"span %s (step %d attempt %d) should have its derived id", s.Name, step, attempt)
		assert.False(t, s.EndTime.Before(s.StartTime), "span %s ends before it starts", s.Name)
		_, ok := attr(s, "gen_ai.input.messages")
		assert.False(t, ok, "span %s records content, which was not asked for", s.Name)
	}

	chat := byName["chat scripted"]
	if len(chat) == 2 {
		assert.Equal(t, trace.SpanKindClient, chat[0].SpanKind, "chat span kind")
		wantAttrs(t, chat[0], map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "cairn.scripted",
			"gen_ai.request.model": "scripted", "gen_ai.response.model": "scripted-2026", "gen_ai.response.id": "resp-1",
			"gen_ai.response.finish_reasons": []string{"tool_calls"}, "gen_ai.usage.input_tokens": int64(100),
			"gen_ai.usage.output_tokens": int64(20), "gen_ai.agent.name": "traced", "cairn.attempt": int64(1),
			"cairn.replayed": false})
		wantAttrs(t, chat[1], map[string]any{"gen_ai.response.id": "resp-2", "cairn.replayed": true})
	}
	for _, s := range byName["execute_tool lookup"] {
		wantAttrs(t, s, map[string]any{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"})
		if intAttr(s, "cairn.attempt") == 1 {
			wantAttrs(t, s, map[string]any{"cairn.attempt.retried": true})
			assert.Equal(t, codes.Error, s.Status.Code, "failed attempt status %+v", s.Status)
			assert.Contains(t, s.Status.Description, "database busy", "failed attempt status")
		} else {
			_, ok := attr(s, "gen_ai.tool.call.id")
			assert.True(t, ok, "completed lookup has no call id")
			assert.NotEqual(t, codes.Error, s.Status.Code, "completed lookup: status %+v", s.Status)
		}
	}
	for _, s := range byName["execute_tool slow"] {
		if intAttr(s, "cairn.attempt") != 1 {
			wantAttrs(t, s, map[string]any{"cairn.replayed": true})
			continue
		}
		// Cut off by the worker's stop: reported, not lost.
		wantAttrs(t, s, map[string]any{"error.type": "attempt_lost"})
		assert.Equal(t, codes.Error, s.Status.Code, "lost attempt: status %+v", s.Status)
		if assert.Len(t, s.Events, 1, "lost attempt: events") {
			assert.Equal(t, "attempt_lost", s.Events[0].Name, "lost attempt: event")
		}
	}
	for _, s := range byName["await_approval refund"] {
		wantAttrs(t, s, map[string]any{"cairn.approval.approved": true, "cairn.approval.by": "alice",
			"cairn.approval.reason": "fine", "gen_ai.tool.call.id": pending[0].CallID, "cairn.replayed": true})
		assert.True(t, s.StartTime.Equal(pending[0].RequestedAt), "approval span starts at %v, the request was made at %v", s.StartTime, pending[0].RequestedAt)
	}

	// Metrics.
	var rm metricdata.ResourceMetrics
	require.NoError(t, e.metrics.Collect(ctx, &rm))
	got := metricSums(rm)
	for name, n := range map[string]float64{
		"gen_ai.client.token.usage": 275, "gen_ai.client.token.usage/count": 4,
		"gen_ai.client.operation.duration/count": 2, "cairn.approval.wait/count": 1,
		"cairn.retries": 2, "cairn.runs": 1,
		"cairn.steps": 7, // 2 chat, lookup, refund, slow, timer, workflow tool wait
	} {
		assert.Equal(t, n, got[name], "metric %s", name)
	}
}

// TestTraceContent: with RecordContent, spans carry what the model was
// given and answered, and what tools were given and returned.
func TestTraceContent(t *testing.T) {
	_, model := script(toolTurn(call("lookup", `{"order":"A1"}`)), answer("It is paid."))
	var tp atomic.Pointer[sdktrace.TracerProvider]
	lookup := tools.MustNew("lookup", "look an order up", func(ctx context.Context, in orderArgs) (string, error) {
		// The tool's own spans (its database client's, say) nest
		// under its call's span.
		_, span := tp.Load().Tracer("db").Start(ctx, "SELECT order")
		span.End()
		return "order " + in.Order + " is paid", nil
	})
	a := &agent.Agent{Name: "talker", Instructions: "Look orders up.", Model: model, Tools: mustSet(t, lookup)}
	e := newTelemetryEnv(t, true, a)
	tp.Store(e.tp)
	ctx := ctxT(t)
	run := e.startRun(a, "talk-1", agent.Input{Message: "Is A1 paid?"})
	_, err := run.Result(ctx)
	require.NoError(t, err)
	eventually(t, "the run's span", func() bool { return slices.Contains(names(e.spans.GetSpans()), "invoke_agent talker") })
	var chats, tools int
	var query, call tracetest.SpanStub
	for _, s := range e.spans.GetSpans() {
		switch s.Name {
		case "chat scripted":
			chats++
			in, _ := attr(s, "gen_ai.input.messages")
			out, _ := attr(s, "gen_ai.output.messages")
			sys, _ := attr(s, "gen_ai.system_instructions")
			assert.Contains(t, in.AsString(), `{"role":"user","parts":[{"type":"text","content":"Is A1 paid?"}]}`, "chat input")
			assert.Contains(t, sys.AsString(), "Look orders up.", "chat system instructions")
			assert.Contains(t, out.AsString(), `"role":"assistant"`, "chat output")
		case "SELECT order":
			query = s
		case "execute_tool lookup":
			call = s
			tools++
			wantAttrs(t, s, map[string]any{"gen_ai.tool.call.arguments": `{"order":"A1"}`,
				"gen_ai.tool.call.result": `"order A1 is paid"`})
		}
	}
	assert.Equal(t, 2, chats, "chat spans")
	assert.Equal(t, 1, tools, "tool spans")
	assert.True(t, query.Parent.IsValid(), "the tool's own span has no parent")
	assert.Equal(t, call.SpanContext.SpanID(), query.Parent.SpanID(), "the tool's own span should hang under its call's span")
}

// TestSpansWithoutIDGenerator: a TracerProvider that draws its own ids
// still gets each step once, and the runtime says why they do not nest.
func TestSpansWithoutIDGenerator(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	_, model := script(answer("Hello."))
	a := &agent.Agent{Name: "plain", Model: model}
	var logs syncbuf.Buffer
	store := inmem.New()
	rt := agent.NewRuntime(store, agent.Options{TracerProvider: tp, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, rt.Register(a))
	ctx := ctxT(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = rt.NewWorker(durable.WorkerOptions{}).Run(wctx) }()
	run, err := rt.Start(ctx, a, "plain-1", agent.Input{Message: "Hi"})
	require.NoError(t, err)
	_, err = run.Result(ctx)
	require.NoError(t, err)
	eventually(t, "the run's span", func() bool { return len(spans.GetSpans()) >= 2 })
	assert.Len(t, names(spans.GetSpans()), 2, "spans: want a chat and the run")
	assert.Contains(t, logs.String(), "WithIDGenerator", "no warning about the ids in the logs")
}

func TestIDGeneratorDrawsIDsForOtherSpans(t *testing.T) {
	var g durable.IDGenerator
	tid, sid := g.NewIDs(context.Background())
	tid2, sid2 := g.NewIDs(context.Background())
	assert.True(t, tid.IsValid(), "trace id %s", tid)
	assert.True(t, sid.IsValid(), "span id %s", sid)
	assert.NotEqual(t, tid, tid2, "trace ids")
	assert.NotEqual(t, sid, sid2, "span ids")
	s := g.NewSpanID(context.Background(), tid)
	assert.True(t, s.IsValid(), "span id %s", s)
	assert.NotEqual(t, sid, s, "span ids")
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func intAttr(s tracetest.SpanStub, key string) int64 {
	v, _ := attr(s, key)
	return v.AsInt64()
}

// wantAttrs checks some attributes of a span.
func wantAttrs(t *testing.T, s tracetest.SpanStub, want map[string]any) {
	t.Helper()
	for key, w := range want {
		v, ok := attr(s, key)
		if !assert.True(t, ok, "span %s has no %s", s.Name, key) {
			continue
		}
		assert.Equal(t, fmt.Sprint(w), fmt.Sprint(v.AsInterface()), "span %s: %s", s.Name, key)
	}
}

// metricSums sums each metric's data points: counters by value,
// histograms by sum, and their counts as "<name>/count".
func metricSums(rm metricdata.ResourceMetrics) map[string]float64 {
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] += float64(p.Value)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] += float64(p.Sum)
					out[m.Name+"/count"] += float64(p.Count)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name] += p.Sum
					out[m.Name+"/count"] += float64(p.Count)
				}
			}
		}
	}
	return out
}

// TestTraceOfAHelper: a helper agent's run, a child run, hangs in the
// same trace under the span of the tool call that started it.
func TestTraceOfAHelper(t *testing.T) {
	_, researcherModel := script(answer("42."))
	researcher := &agent.Agent{Name: "researcher", Description: "Finds facts.", Model: researcherModel}
	_, model := script(toolTurn(call("researcher", `{"input":"life"}`)), answer("It is 42."))
	boss := &agent.Agent{Name: "boss", Model: model, Helpers: []*agent.Agent{researcher}}
	e := newTelemetryEnv(t, false, boss)
	run := e.startRun(boss, "boss-1", agent.Input{Message: "What is the answer?"})
	assert.Equal(t, "It is 42.", e.result(run).Text, "result")
	eventually(t, "the run's span", func() bool { return slices.Contains(names(e.spans.GetSpans()), "invoke_agent boss") })
	byName := map[string]tracetest.SpanStub{}
	for _, s := range e.spans.GetSpans() {
		_, dup := byName[s.Name]
		assert.False(t, dup && s.Name != "chat scripted", "span %s twice", s.Name)
		byName[s.Name] = s
	}
	call, child, parent := byName["execute_tool researcher"], byName["invoke_agent researcher"], byName["invoke_agent boss"]
	assert.Equal(t, parent.SpanContext.SpanID(), call.Parent.SpanID(), "the helper's call should hang under the parent's run")
	assert.Equal(t, call.SpanContext.SpanID(), child.Parent.SpanID(), "the helper's run should hang under its call")
	assert.Equal(t, parent.SpanContext.TraceID(), child.SpanContext.TraceID(), "the helper's run should be in the parent's trace")
	wantAttrs(t, call, map[string]any{"gen_ai.tool.name": "researcher", "gen_ai.operation.name": "execute_tool"})
}

// TestTraceOfAConversation: a conversation that continues as new stays
// one trace with one run span; the model calls of every history are
// reported once each, with distinct ids; each exchange has a reply span
// (from the message to the reply), each wait for a message its span, and
// the replies a new history records again have none.
func TestTraceOfAConversation(t *testing.T) {
	_, a := echoAgent("chat", 2)
	e := newTelemetryEnv(t, false, a)
	ctx := ctxT(t)
	run := e.startRun(a, "chat-1", agent.Input{Conversation: true})
	for _, text := range []string{"one", "two", "three", "four", "five"} {
		_, err := say(ctx, e.rt, run.ID, text)
		require.NoError(t, err)
	}
	require.NoError(t, e.rt.End(ctx, run.ID))
	e.result(run)
	// A worker lets a waiting run go before it reports the write that
	// let it go, so a span of an earlier exchange may come after the
	// run's own span: wait for all six.
	eventually(t, "the spans", func() bool { return len(e.spans.GetSpans()) >= 17 })
	spans := e.spans.GetSpans()
	ids := map[trace.SpanID]bool{}
	gens := map[int64]int{}
	for _, s := range spans {
		assert.False(t, ids[s.SpanContext.SpanID()], "span id of %s twice", s.Name)
		ids[s.SpanContext.SpanID()] = true
		if s.Name == "chat scripted" {
			gens[intAttr(s, "cairn.run.generation")]++
		}
	}
	// Five exchanges, two per history: histories 0, 1 and 2; six waits,
	// the last one for the message that ends the conversation.
	count := map[string]int{}
	for _, n := range names(spans) {
		count[n]++
	}
	assert.Equal(t, map[string]int{"chat scripted": 5, "reply": 5, "await_message": 6, "invoke_agent chat": 1}, count, "spans")
	for _, s := range spans {
		if s.Name == "await_message" || s.Name == "reply" {
			assert.True(t, s.EndTime.After(s.StartTime), "%s of step %d lasted %v", s.Name, intAttr(s, "cairn.step"), s.EndTime.Sub(s.StartTime))
		}
	}
	assert.Equal(t, []int{2, 2, 1}, []int{gens[0], gens[1], gens[2]}, "chat spans of histories 0, 1 and 2: %v", gens)
}

// TestUnsampledCallerIsNotTraced: the sampling decision is the caller's,
// taken when the run starts: a run started under an unsampled span emits
// no span, with the SDK's default, parent-based sampler.
func TestUnsampledCallerIsNotTraced(t *testing.T) {
	_, model := script(toolTurn(call("lookup", `{"order":"A1"}`)), answer("Paid."))
	lookup := tools.MustNew("lookup", "look an order up", func(ctx context.Context, in orderArgs) (string, error) {
		return "paid", nil
	})
	a := &agent.Agent{Name: "quiet", Model: model, Tools: mustSet(t, lookup)}
	e := newTelemetryEnv(t, false, a)
	ctx := ctxT(t)
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{7}, Remote: true})
	run, err := e.rt.Start(trace.ContextWithRemoteSpanContext(ctx, unsampled), a, "quiet-1", agent.Input{Message: "Paid?"})
	require.NoError(t, err)
	_, err = run.Result(ctx)
	require.NoError(t, err)
	// A sampled run after it: once its span is in, the first run's
	// would be too.
	_, err = e.rt.Start(ctx, a, "quiet-2", agent.Input{Message: "Paid?"})
	require.NoError(t, err)
	eventually(t, "the sampled run's span", func() bool { return slices.Contains(names(e.spans.GetSpans()), "invoke_agent quiet") })
	for _, s := range e.spans.GetSpans() {
		v, _ := attr(s, "cairn.run.id")
		assert.NotEqual(t, "quiet-1", v.AsString(), "span %s of the unsampled run was exported", s.Name)
	}
}

// TestTraceOfAHandoff: a handoff is a span of its own, named after the
// agent that takes over, and the calls after it are that agent's.
func TestTraceOfAHandoff(t *testing.T) {
	_, billingModel := newRecorder(func(int, providers.Request) (providers.Response, error) { return answer("Billing: paid."), nil })
	billing := &agent.Agent{Name: "billing", Model: billingModel}
	_, triageModel := script(toolTurn(call("transfer_to_billing", `{}`)))
	triage := &agent.Agent{Name: "triage", Model: triageModel, Handoffs: []*agent.Agent{billing}}
	e := newTelemetryEnv(t, false, triage)
	e.result(e.startRun(triage, "handoff-traced", agent.Input{Message: "Paid?"}))
	eventually(t, "the run's span", func() bool { return slices.Contains(names(e.spans.GetSpans()), "invoke_agent triage") })
	var handoff, last tracetest.SpanStub
	for _, s := range e.spans.GetSpans() {
		switch s.Name {
		case "handoff billing":
			handoff = s
		case "chat scripted":
			if last.Name == "" || s.StartTime.After(last.StartTime) {
				last = s
			}
		}
	}
	require.Equal(t, "handoff billing", handoff.Name, "no handoff span in %v", names(e.spans.GetSpans()))
	wantAttrs(t, handoff, map[string]any{"cairn.handoff.from": "triage", "cairn.handoff.to": "billing",
		"gen_ai.agent.name": "triage", "gen_ai.conversation.id": "handoff-traced"})
	wantAttrs(t, last, map[string]any{"gen_ai.agent.name": "billing"})
}
