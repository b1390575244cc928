package agent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	"github.com/cairn-dev/cairn/durable/memory"
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
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans), sdktrace.WithIDGenerator(agent.IDGenerator{}))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	e := newEnvOn(t, memory.New(), agent.Options{TracerProvider: tp, MeterProvider: mp, RecordContent: content}, agents...)
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
	if _, err := e.rt.Start(callerCtx, a, "traced-1", agent.Input{Message: "Refund A1."}); err != nil {
		t.Fatal(err)
	}
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
	if err := e.rt.Decide(ctx, "traced-1", agent.Decision{CallID: pending[0].CallID, Approved: true, By: "alice", Reason: "fine"}); err != nil {
		t.Fatal(err)
	}
	res, err := e.rt.Run("traced-1").Result(ctx)
	if err != nil || res.Text != "Done." {
		t.Fatalf("result %+v, %v", res, err)
	}
	info, err := e.rt.Run("traced-1").Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Observers hear of a write after the store accepted it: the last
	// write brings the run's span.
	eventually(t, "the run's span", func() bool { return slices.Contains(names(e.spans.GetSpans()), "invoke_agent traced") })
	spans := e.spans.GetSpans()
	if len(spans) != 12 {
		t.Errorf("%d spans, want 12: %v", len(spans), names(spans))
	}
	byName := map[string][]tracetest.SpanStub{}
	ids := map[trace.SpanID]string{}
	var runSpan tracetest.SpanStub
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
		if other, dup := ids[s.SpanContext.SpanID()]; dup {
			t.Errorf("span %s has the id of %s", s.Name, other)
		}
		ids[s.SpanContext.SpanID()] = s.Name
		if s.SpanContext.TraceID() != caller.SpanContext().TraceID() {
			t.Errorf("span %s is in trace %s, not the caller's", s.Name, s.SpanContext.TraceID())
		}
		if s.Name == "invoke_agent traced" {
			runSpan = s
		}
	}
	want := map[string]int{"handle request": 1, "invoke_agent traced": 1, "chat scripted": 2,
		"execute_tool lookup": 2, "execute_tool refund": 1, "execute_tool slow": 2, "execute_tool wait": 1,
		"timer": 1, "await_approval refund": 1}
	for name, n := range want {
		if len(byName[name]) != n {
			t.Errorf("%d spans %q, want %d", len(byName[name]), name, n)
		}
	}

	// The run's span hangs under the caller's; every other under the run's.
	if runSpan.Parent.SpanID() != caller.SpanContext().SpanID() {
		t.Errorf("the run's span has parent %s, want the caller's %s", runSpan.Parent.SpanID(), caller.SpanContext().SpanID())
	}
	if runSpan.SpanContext.SpanID() != info.Trace.RunSpanID("traced-1") {
		t.Error("the run's span does not have the id derived from the run")
	}
	wantAttrs(t, runSpan, map[string]any{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "traced",
		"gen_ai.agent.description": "refunds orders", "gen_ai.conversation.id": "traced-1",
		"gen_ai.provider.name": "cairn.scripted", "gen_ai.request.model": "scripted",
		"gen_ai.usage.input_tokens": int64(250), "gen_ai.usage.output_tokens": int64(25), "cairn.run.status": "completed"})
	if !runSpan.StartTime.Equal(info.CreatedAt) || runSpan.EndTime.Before(runSpan.StartTime) {
		t.Errorf("the run's span runs from %v to %v; the run was created at %v", runSpan.StartTime, runSpan.EndTime, info.CreatedAt)
	}
	for _, s := range spans {
		if s.Name == "handle request" || s.Name == runSpan.Name {
			continue
		}
		if s.Parent.SpanID() != runSpan.SpanContext.SpanID() {
			t.Errorf("span %s hangs under %s, not the run", s.Name, ids[s.Parent.SpanID()])
		}
		step, attempt := intAttr(s, "cairn.step"), intAttr(s, "cairn.attempt")
		if s.SpanContext.SpanID() != info.Trace.StepSpanID("traced-1", 0, int(step), int(attempt)) {
			t.Errorf("span %s (step %d attempt %d) does not have its derived id", s.Name, step, attempt)
		}
		if s.EndTime.Before(s.StartTime) {
			t.Errorf("span %s ends before it starts", s.Name)
		}
		if _, ok := attr(s, "gen_ai.input.messages"); ok {
			t.Errorf("span %s records content, which was not asked for", s.Name)
		}
	}

	chat := byName["chat scripted"]
	if len(chat) == 2 {
		if chat[0].SpanKind != trace.SpanKindClient {
			t.Errorf("chat span kind %v", chat[0].SpanKind)
		}
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
			if s.Status.Code != codes.Error || !strings.Contains(s.Status.Description, "database busy") {
				t.Errorf("failed attempt status %+v", s.Status)
			}
		} else if _, ok := attr(s, "gen_ai.tool.call.id"); !ok || s.Status.Code == codes.Error {
			t.Errorf("completed lookup: status %+v, call id %v", s.Status, ok)
		}
	}
	for _, s := range byName["execute_tool slow"] {
		if intAttr(s, "cairn.attempt") != 1 {
			wantAttrs(t, s, map[string]any{"cairn.replayed": true})
			continue
		}
		// Cut off by the worker's stop: reported, not lost.
		wantAttrs(t, s, map[string]any{"error.type": "attempt_lost"})
		if s.Status.Code != codes.Error || len(s.Events) != 1 || s.Events[0].Name != "attempt_lost" {
			t.Errorf("lost attempt: status %+v, events %v", s.Status, s.Events)
		}
	}
	for _, s := range byName["await_approval refund"] {
		wantAttrs(t, s, map[string]any{"cairn.approval.approved": true, "cairn.approval.by": "alice",
			"cairn.approval.reason": "fine", "gen_ai.tool.call.id": pending[0].CallID, "cairn.replayed": true})
		if !s.StartTime.Equal(pending[0].RequestedAt) {
			t.Errorf("approval span starts at %v, the request was made at %v", s.StartTime, pending[0].RequestedAt)
		}
	}

	// Metrics.
	var rm metricdata.ResourceMetrics
	if err := e.metrics.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := metricSums(rm)
	for name, n := range map[string]float64{
		"gen_ai.client.token.usage": 275, "gen_ai.client.token.usage/count": 4,
		"gen_ai.client.operation.duration/count": 2, "cairn.approval.wait/count": 1,
		"cairn.retries": 2, "cairn.runs": 1,
		"cairn.steps": 7, // 2 chat, lookup, refund, slow, timer, workflow tool wait
	} {
		if got[name] != n {
			t.Errorf("metric %s = %v, want %v", name, got[name], n)
		}
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
	if _, err := run.Result(ctx); err != nil {
		t.Fatal(err)
	}
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
			if !strings.Contains(in.AsString(), `{"role":"user","parts":[{"type":"text","content":"Is A1 paid?"}]}`) ||
				!strings.Contains(sys.AsString(), "Look orders up.") || !strings.Contains(out.AsString(), `"role":"assistant"`) {
				t.Errorf("chat content: in %s, system %s, out %s", in.AsString(), sys.AsString(), out.AsString())
			}
		case "SELECT order":
			query = s
		case "execute_tool lookup":
			call = s
			tools++
			wantAttrs(t, s, map[string]any{"gen_ai.tool.call.arguments": `{"order":"A1"}`,
				"gen_ai.tool.call.result": `"order A1 is paid"`})
		}
	}
	if chats != 2 || tools != 1 {
		t.Errorf("%d chat spans and %d tool spans, want 2 and 1", chats, tools)
	}
	if query.Parent.SpanID() != call.SpanContext.SpanID() || !query.Parent.IsValid() {
		t.Errorf("the tool's own span hangs under %s, not under its call's span %s", query.Parent.SpanID(), call.SpanContext.SpanID())
	}
}

// TestSpansWithoutIDGenerator: a TracerProvider that draws its own ids
// still gets each step once, and the runtime says why they do not nest.
func TestSpansWithoutIDGenerator(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	_, model := script(answer("Hello."))
	a := &agent.Agent{Name: "plain", Model: model}
	var logs syncbuf.Buffer
	store := memory.New()
	rt := agent.NewRuntime(store, agent.Options{TracerProvider: tp, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := rt.Register(a); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = rt.NewWorker(durable.WorkerOptions{}).Run(wctx) }()
	run, err := rt.Start(ctx, a, "plain-1", agent.Input{Message: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.Result(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the run's span", func() bool { return len(spans.GetSpans()) >= 2 })
	if got := names(spans.GetSpans()); len(got) != 2 {
		t.Errorf("spans %v, want a chat and the run", got)
	}
	if !strings.Contains(logs.String(), "WithIDGenerator") {
		t.Errorf("no warning about the ids in the logs:\n%s", logs.String())
	}
}

func TestIDGeneratorDrawsIDsForOtherSpans(t *testing.T) {
	var g agent.IDGenerator
	tid, sid := g.NewIDs(context.Background())
	tid2, sid2 := g.NewIDs(context.Background())
	if !tid.IsValid() || !sid.IsValid() || tid == tid2 || sid == sid2 {
		t.Errorf("ids %s %s then %s %s", tid, sid, tid2, sid2)
	}
	if s := g.NewSpanID(context.Background(), tid); !s.IsValid() || s == sid {
		t.Errorf("span id %s", s)
	}
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
		if !ok {
			t.Errorf("span %s has no %s", s.Name, key)
			continue
		}
		if got := v.AsInterface(); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("span %s: %s = %v, want %v", s.Name, key, got, w)
		}
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
	if res := e.result(run); res.Text != "It is 42." {
		t.Fatalf("result %+v", res)
	}
	eventually(t, "the run's span", func() bool { return slices.Contains(names(e.spans.GetSpans()), "invoke_agent boss") })
	byName := map[string]tracetest.SpanStub{}
	for _, s := range e.spans.GetSpans() {
		if _, dup := byName[s.Name]; dup && s.Name != "chat scripted" {
			t.Errorf("span %s twice", s.Name)
		}
		byName[s.Name] = s
	}
	call, child, parent := byName["execute_tool researcher"], byName["invoke_agent researcher"], byName["invoke_agent boss"]
	if call.Parent.SpanID() != parent.SpanContext.SpanID() || child.Parent.SpanID() != call.SpanContext.SpanID() ||
		child.SpanContext.TraceID() != parent.SpanContext.TraceID() {
		t.Errorf("the helper's run is not under its call: call %v under %v; helper run under %v",
			call.SpanContext.SpanID(), call.Parent.SpanID(), child.Parent.SpanID())
	}
	wantAttrs(t, call, map[string]any{"gen_ai.tool.name": "researcher", "gen_ai.operation.name": "execute_tool"})
}

// TestTraceOfAConversation: a conversation that continues as new stays
// one trace with one run span; the model calls of every history are
// reported once each, with distinct ids.
func TestTraceOfAConversation(t *testing.T) {
	_, a := echoAgent("chat", 2)
	e := newTelemetryEnv(t, false, a)
	ctx := ctxT(t)
	run := e.startRun(a, "chat-1", agent.Input{Conversation: true})
	for _, text := range []string{"one", "two", "three", "four", "five"} {
		if _, err := say(ctx, e.rt, run.ID, text); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.rt.End(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	e.result(run)
	// A worker lets a waiting run go before it reports the write that
	// let it go, so a span of an earlier exchange may come after the
	// run's own span: wait for all six.
	eventually(t, "the spans", func() bool { return len(e.spans.GetSpans()) >= 6 })
	spans := e.spans.GetSpans()
	ids := map[trace.SpanID]bool{}
	gens := map[int64]int{}
	for _, s := range spans {
		if ids[s.SpanContext.SpanID()] {
			t.Errorf("span id of %s twice", s.Name)
		}
		ids[s.SpanContext.SpanID()] = true
		if s.Name == "chat scripted" {
			gens[intAttr(s, "cairn.run.generation")]++
		}
	}
	// Five exchanges, two per history: histories 0, 1 and 2.
	if len(spans) != 6 || gens[0] != 2 || gens[1] != 2 || gens[2] != 1 {
		t.Errorf("spans %v; chat spans by history %v, want 2, 2, 1", names(spans), gens)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.Result(ctx); err != nil {
		t.Fatal(err)
	}
	// A sampled run after it: once its span is in, the first run's
	// would be too.
	if _, err := e.rt.Start(ctx, a, "quiet-2", agent.Input{Message: "Paid?"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the sampled run's span", func() bool { return slices.Contains(names(e.spans.GetSpans()), "invoke_agent quiet") })
	for _, s := range e.spans.GetSpans() {
		if v, _ := attr(s, "cairn.run.id"); v.AsString() == "quiet-1" {
			t.Errorf("span %s of the unsampled run was exported", s.Name)
		}
	}
}
