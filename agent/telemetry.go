package agent

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/semconv/v1.41.0/genaiconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
)

// instrumentation is the name of cairn's tracer and meter.
const instrumentation = "github.com/cairn-dev/cairn/agent"

// cairn's own span and metric attributes.
const (
	attrRunID      = attribute.Key("cairn.run.id")
	attrRunStatus  = attribute.Key("cairn.run.status")
	attrGeneration = attribute.Key("cairn.run.generation")
	attrStep       = attribute.Key("cairn.step")
	attrAttempt    = attribute.Key("cairn.attempt")
	attrReplayed   = attribute.Key("cairn.replayed")
	attrRetried    = attribute.Key("cairn.attempt.retried")
	attrStepKind   = attribute.Key("cairn.step.kind")
	attrOutcome    = attribute.Key("cairn.step.outcome")
	attrApproved   = attribute.Key("cairn.approval.approved")
	attrDecidedBy  = attribute.Key("cairn.approval.by")
	attrReason     = attribute.Key("cairn.approval.reason")
)

// telemetry turns what workers journal into spans and metrics. Spans come
// only from committed events (a durable.Observer), never from replay, and
// their ids derive from the run's trace, the run, the step and the attempt
// (backend.Trace), so a step is reported once, by whichever worker
// finished it, with the same id it would have had anywhere else.
type telemetry struct {
	tracer  trace.Tracer
	log     *slog.Logger
	lookup  func(name string) (*registration, bool)
	content *contentCache // nil unless content is recorded

	tokenUsage   genaiconv.ClientTokenUsage
	opDuration   genaiconv.ClientOperationDuration
	steps        metric.Int64Counter
	retries      metric.Int64Counter
	runs         metric.Int64Counter
	approvalWait metric.Float64Histogram

	warnIDs sync.Once
}

func newTelemetry(opts Options, log *slog.Logger, lookup func(string) (*registration, bool)) *telemetry {
	tp, mp := opts.TracerProvider, opts.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	t := &telemetry{tracer: tp.Tracer(instrumentation), log: log, lookup: lookup}
	if opts.RecordContent {
		t.content = newContentCache(4096)
	}
	m := mp.Meter(instrumentation)
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	t.tokenUsage, err = genaiconv.NewClientTokenUsage(m)
	check(err)
	t.opDuration, err = genaiconv.NewClientOperationDuration(m)
	check(err)
	t.steps, err = m.Int64Counter("cairn.steps", metric.WithUnit("{step}"),
		metric.WithDescription("Steps of agent runs that ended: model calls, tool calls, timers, child runs, by kind and outcome."))
	check(err)
	t.retries, err = m.Int64Counter("cairn.retries", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts of model and tool calls that failed and were retried, lost attempts included."))
	check(err)
	t.runs, err = m.Int64Counter("cairn.runs", metric.WithUnit("{run}"),
		metric.WithDescription("Agent runs that reached a status: completed, failed, canceled, parked."))
	check(err)
	t.approvalWait, err = m.Float64Histogram("cairn.approval.wait", metric.WithUnit("s"),
		metric.WithDescription("Time from an approval request to its decision."))
	check(err)
	for _, err := range errs {
		// A meter that refuses an instrument gives a no-op one: the
		// runs go on, without that metric.
		log.Warn("telemetry: create instrument", "err", err)
	}
	return t
}

// observe emits the spans and metrics of one write to a run.
func (t *telemetry) observe(ctx context.Context, w durable.Written) {
	tr := w.Run.Trace
	if tr.IsZero() {
		tr = fallbackTrace(w.Run.ID)
	}
	o := observation{t: t, w: w, trace: tr, runSpan: tr.SpanContext(tr.RunSpanID(w.Run.ID))}
	for _, e := range w.Previous {
		o.event(ctx, w.Run.Generation-1, e)
	}
	for _, e := range w.Events {
		o.event(ctx, w.Run.Generation, e)
	}
	if w.Run.Status == backend.StatusParked {
		t.runs.Add(ctx, 1, metric.WithAttributes(attrRunStatus.String(string(backend.StatusParked)),
			semconv.GenAIAgentName(w.Run.Workflow)))
	}
}

// fallbackTrace is the trace of a run recorded before runs had one: its id
// derives from the run's, so its spans still make one trace.
func fallbackTrace(runID string) backend.Trace {
	sum := sha256.Sum256([]byte("cairn trace of run " + runID))
	t := backend.Trace{Flags: trace.FlagsSampled}
	copy(t.TraceID[:], sum[:])
	return t
}

// observation is one write being turned into telemetry.
type observation struct {
	t       *telemetry
	w       durable.Written
	trace   backend.Trace
	runSpan trace.SpanContext
}

// agent returns the agent named name, if registered here, and what its
// model says it is.
func (o *observation) agent(name string) (*Agent, providers.Info) {
	reg, ok := o.t.lookup(name)
	if !ok {
		return nil, providers.Info{}
	}
	return reg.agent, describe(reg.agent.Model)
}

// describe names a model, if it can say what it is.
func describe(m providers.Model) providers.Info {
	if d, ok := m.(providers.Describer); ok {
		return d.Describe()
	}
	return providers.Info{}
}

// event emits what one event of generation gen ends, if anything.
func (o *observation) event(ctx context.Context, gen int, e backend.Event) {
	switch e.Type {
	case backend.EventActivityCompleted, backend.EventActivityAttemptFailed, backend.EventActivityFailed:
		o.activity(ctx, gen, e)
	case backend.EventTimerFired:
		s := o.stepSpan(o.w.Run.Workflow, "timer", trace.SpanKindInternal, gen, e, 0)
		o.t.steps.Add(ctx, 1, metric.WithAttributes(attrStepKind.String("timer"), attrOutcome.String("completed")))
		s.end(ctx, e.Time, nil)
	case backend.EventChildCompleted:
		// A child of an agent run is a helper agent, called as a tool.
		s := o.stepSpan(o.w.Run.Workflow, "execute_tool "+e.Name, trace.SpanKindInternal, gen, e, 0)
		s.attrs = append(s.attrs, semconv.GenAIOperationNameExecuteTool, semconv.GenAIToolName(e.Name),
			semconv.GenAIToolType("function"), attribute.String("cairn.child.run_id", e.RunID))
		o.t.steps.Add(ctx, 1, metric.WithAttributes(attrStepKind.String("child"), outcome(e.Failure)))
		s.end(ctx, e.Time, e.Failure)
	case backend.EventSideEffect:
		o.record(ctx, gen, e)
	case backend.EventRunCompleted, backend.EventRunFailed, backend.EventRunCanceled:
		o.run(ctx, e)
	}
}

// activity emits the span of an activity attempt: a model call or a tool
// call.
func (o *observation) activity(ctx context.Context, gen int, e backend.Event) {
	failure := e.Failure
	var s span
	kind := "activity"
	switch {
	case strings.HasPrefix(e.Name, "model:") || strings.HasPrefix(e.Name, "summary:"):
		kind = "chat"
		agent, summary := strings.CutPrefix(e.Name, "summary:")
		agent = strings.TrimPrefix(agent, "model:")
		a, model := o.agent(agent)
		if summary && a != nil && a.Memory != nil && a.Memory.Summarizer != nil {
			model = describe(a.Memory.Summarizer)
		}
		s = o.stepSpan(agent, spanName("chat", model.Model), trace.SpanKindClient, gen, e, e.Attempt)
		s.attrs = append(s.attrs, semconv.GenAIOperationNameChat)
		if summary {
			s.attrs = append(s.attrs, attribute.Bool("cairn.memory.summary", true))
		}
		s.attrs = append(s.attrs, modelAttrs(model)...)
		var resp providers.Response
		if e.Type == backend.EventActivityCompleted && json.Unmarshal(e.Payload, &resp) == nil {
			o.chatResponse(ctx, &s, model, resp)
		}
		if o.t.content != nil {
			if in, ok := o.t.content.take(s.id); ok {
				s.attrs = append(s.attrs, in...)
			}
		}
		var errType []attribute.KeyValue
		if failure != nil {
			errType = append(errType, semconv.ErrorTypeKey.String(errorType(failure)))
		}
		o.t.opDuration.Record(ctx, e.Time.Sub(e.Started).Seconds(), genaiconv.OperationNameChat,
			genaiconv.ProviderNameAttr(providerName(model)), append(errType, modelAttrs(model)...)...)
	case strings.HasPrefix(e.Name, "tool:"):
		kind = "tool"
		agent, tool, _ := strings.Cut(strings.TrimPrefix(e.Name, "tool:"), "/")
		s = o.stepSpan(agent, "execute_tool "+tool, trace.SpanKindInternal, gen, e, e.Attempt)
		s.attrs = append(s.attrs, semconv.GenAIOperationNameExecuteTool, semconv.GenAIToolName(tool),
			semconv.GenAIToolType("function"))
		var out toolOutcome
		if e.Type == backend.EventActivityCompleted && json.Unmarshal(e.Payload, &out) == nil {
			if out.CallID != "" {
				s.attrs = append(s.attrs, semconv.GenAIToolCallID(out.CallID))
			}
			switch {
			case out.Fatal != "":
				failure = &backend.Failure{Message: out.Fatal, Type: "fatal"}
			case out.Result.IsError:
				// The model reads the error; the call itself worked.
				s.attrs = append(s.attrs, attribute.Bool("cairn.tool.result_is_error", true))
			}
			if o.t.content != nil {
				s.attrs = append(s.attrs, semconv.GenAIToolCallResultKey.String(out.Result.Content))
			}
		}
		if o.t.content != nil {
			if in, ok := o.t.content.take(s.id); ok {
				s.attrs = append(s.attrs, in...)
			}
		}
	case strings.HasPrefix(e.Name, "recall:"):
		kind = "recall"
		s = o.stepSpan(strings.TrimPrefix(e.Name, "recall:"), "recall_memory", trace.SpanKindInternal, gen, e, e.Attempt)
	case strings.HasPrefix(e.Name, "toolset:"):
		// The listing of an agent's toolsets (see Toolset).
		kind = "toolset"
		s = o.stepSpan(strings.TrimPrefix(e.Name, "toolset:"), "list_tools", trace.SpanKindInternal, gen, e, e.Attempt)
		var list toolList
		if e.Type == backend.EventActivityCompleted && json.Unmarshal(e.Payload, &list) == nil {
			s.attrs = append(s.attrs, attribute.String("cairn.tools.hash", list.Hash), attribute.Int("cairn.tools.count", len(list.Tools)))
		}
	default:
		s = o.stepSpan(o.w.Run.Workflow, e.Name, trace.SpanKindInternal, gen, e, e.Attempt)
	}
	if e.Type == backend.EventActivityAttemptFailed {
		s.attrs = append(s.attrs, attrRetried.Bool(true))
		o.t.retries.Add(ctx, 1, metric.WithAttributes(attrStepKind.String(kind),
			semconv.ErrorTypeKey.String(errorType(e.Failure))))
	} else {
		o.t.steps.Add(ctx, 1, metric.WithAttributes(attrStepKind.String(kind), outcome(failure)))
	}
	s.end(ctx, e.Time, failure)
}

// chatResponse adds what a model's answer says to its span, and counts
// its tokens.
func (o *observation) chatResponse(ctx context.Context, s *span, model providers.Info, resp providers.Response) {
	if resp.Model != "" {
		s.attrs = append(s.attrs, semconv.GenAIResponseModel(resp.Model))
	}
	if resp.ID != "" {
		s.attrs = append(s.attrs, semconv.GenAIResponseID(resp.ID))
	}
	if resp.FinishReason != "" {
		s.attrs = append(s.attrs, semconv.GenAIResponseFinishReasons(string(resp.FinishReason)))
	}
	s.attrs = append(s.attrs, semconv.GenAIUsageInputTokens(resp.Usage.InputTokens),
		semconv.GenAIUsageOutputTokens(resp.Usage.OutputTokens))
	if o.t.content != nil {
		s.attrs = append(s.attrs, semconv.GenAIOutputMessagesKey.String(outputMessages(resp)))
	}
	attrs := modelAttrs(model)
	if resp.Model != "" {
		attrs = append(attrs, semconv.GenAIResponseModel(resp.Model))
	}
	provider := genaiconv.ProviderNameAttr(providerName(model))
	o.t.tokenUsage.Record(ctx, int64(resp.Usage.InputTokens), genaiconv.OperationNameChat, provider,
		genaiconv.TokenTypeInput, attrs...)
	o.t.tokenUsage.Record(ctx, int64(resp.Usage.OutputTokens), genaiconv.OperationNameChat, provider,
		genaiconv.TokenTypeOutput, attrs...)
}

// record emits the span of a wait for a person, or of a workflow tool,
// when the record that ends it is written.
func (o *observation) record(ctx context.Context, gen int, e backend.Event) {
	var r record
	switch e.Name {
	case recApprovalDecided, recQuestionAnswered, recToolFinished:
		if json.Unmarshal(e.Payload, &r) != nil {
			return
		}
	default:
		return
	}
	e.Started = r.Since
	var s span
	switch e.Name {
	case recApprovalDecided:
		s = o.stepSpan(cmp.Or(r.Agent, o.w.Run.Workflow), "await_approval "+r.Tool, trace.SpanKindInternal, gen, e, 0)
		s.attrs = append(s.attrs, semconv.GenAIToolName(r.Tool), semconv.GenAIToolCallID(r.CallID),
			attrApproved.Bool(r.Approved), attrDecidedBy.String(r.By))
		if r.Reason != "" {
			s.attrs = append(s.attrs, attrReason.String(r.Reason))
		}
		if !r.Since.IsZero() {
			o.t.approvalWait.Record(ctx, e.Time.Sub(r.Since).Seconds(), metric.WithAttributes(
				attrApproved.Bool(r.Approved), semconv.GenAIAgentName(o.w.Run.Workflow)))
		}
	case recQuestionAnswered:
		s = o.stepSpan(cmp.Or(r.Agent, o.w.Run.Workflow), "await_answer", trace.SpanKindInternal, gen, e, 0)
		s.attrs = append(s.attrs, semconv.GenAIToolName(AskHumanTool), semconv.GenAIToolCallID(r.CallID),
			attribute.String("cairn.answer.by", r.By))
	case recToolFinished:
		s = o.stepSpan(cmp.Or(r.Agent, o.w.Run.Workflow), "execute_tool "+r.Tool, trace.SpanKindInternal, gen, e, 0)
		s.attrs = append(s.attrs, semconv.GenAIOperationNameExecuteTool, semconv.GenAIToolName(r.Tool),
			semconv.GenAIToolCallID(r.CallID), semconv.GenAIToolType("function"))
		if o.t.content != nil && r.Result != nil {
			s.attrs = append(s.attrs, semconv.GenAIToolCallResultKey.String(r.Result.Content))
		}
		o.t.steps.Add(ctx, 1, metric.WithAttributes(attrStepKind.String("workflow_tool"), outcome(nil)))
	}
	if r.Since.IsZero() {
		s.start = e.Time // recorded before records kept their start
	}
	s.end(ctx, e.Time, nil)
}

// run emits the run's own span when it ends: from its creation, across
// all its histories, to its end.
func (o *observation) run(ctx context.Context, e backend.Event) {
	run := o.w.Run
	name := "invoke_agent " + run.Workflow
	s := span{o: o, name: name, kind: trace.SpanKindInternal, parent: o.trace.ParentContext(),
		id: o.runSpan.SpanID(), start: run.CreatedAt}
	s.attrs = append(s.attrs, semconv.GenAIOperationNameInvokeAgent, semconv.GenAIAgentName(run.Workflow),
		semconv.GenAIAgentID(run.Workflow), semconv.GenAIConversationID(run.ID), attrRunID.String(run.ID),
		attrRunStatus.String(string(run.Status)), attrReplayed.Bool(o.w.Replayed))
	agent, model := o.agent(run.Workflow)
	s.attrs = append(s.attrs, modelAttrs(model)...)
	if agent != nil && agent.Description != "" {
		s.attrs = append(s.attrs, semconv.GenAIAgentDescription(agent.Description))
	}
	if run.ParentID != "" {
		s.attrs = append(s.attrs, attribute.String("cairn.run.parent_id", run.ParentID))
	}
	var res RunResult
	if e.Type == backend.EventRunCompleted && json.Unmarshal(e.Payload, &res) == nil {
		s.attrs = append(s.attrs, semconv.GenAIUsageInputTokens(res.Usage.InputTokens),
			semconv.GenAIUsageOutputTokens(res.Usage.OutputTokens), attribute.Int("cairn.turns", res.Turns))
		if res.Agent != "" && res.Agent != run.Workflow {
			s.attrs = append(s.attrs, attribute.String("cairn.final_agent", res.Agent))
		}
	}
	// Counted before its span ends: whoever sees the run's span, the last
	// thing a run emits, sees it counted.
	o.t.runs.Add(ctx, 1, metric.WithAttributes(attrRunStatus.String(string(run.Status)),
		semconv.GenAIAgentName(run.Workflow)))
	s.end(ctx, e.Time, e.Failure)
}

// modelAttrs are the attributes that name a model.
func modelAttrs(model providers.Info) []attribute.KeyValue {
	attrs := []attribute.KeyValue{semconv.GenAIProviderNameKey.String(providerName(model))}
	if model.Model != "" {
		attrs = append(attrs, semconv.GenAIRequestModel(model.Model))
	}
	return attrs
}

func providerName(info providers.Info) string {
	if info.Provider == "" {
		return "_OTHER"
	}
	return info.Provider
}

func spanName(op, model string) string {
	if model == "" {
		return op
	}
	return op + " " + model
}

// stepSpan starts describing the span of a step (attempt > 0: of one
// attempt) of agent's that event e ends.
func (o *observation) stepSpan(agent, name string, kind trace.SpanKind, gen int, e backend.Event, attempt int) span {
	run := o.w.Run
	s := span{o: o, name: name, kind: kind, parent: o.runSpan,
		id: o.trace.StepSpanID(run.ID, gen, e.Step, attempt), start: e.Started}
	if s.start.IsZero() {
		s.start = e.Time
	}
	s.attrs = append(s.attrs, semconv.GenAIAgentName(agent), semconv.GenAIConversationID(run.ID),
		attrRunID.String(run.ID), attrStep.Int(e.Step), attrReplayed.Bool(o.w.Replayed))
	if attempt > 0 {
		s.attrs = append(s.attrs, attrAttempt.Int(attempt))
	}
	if gen > 0 {
		s.attrs = append(s.attrs, attrGeneration.Int(gen))
	}
	return s
}

// span describes a span to emit once it is complete.
type span struct {
	o      *observation
	name   string
	kind   trace.SpanKind
	parent trace.SpanContext // invalid: a root span
	id     trace.SpanID
	start  time.Time
	attrs  []attribute.KeyValue
}

// end emits the span, ended at end, failed if f is not nil.
func (s span) end(ctx context.Context, end time.Time, f *backend.Failure) {
	ctx = trace.ContextWithSpanContext(ctx, s.parent)
	ctx = context.WithValue(ctx, spanIDsKey{}, spanIDs{trace: s.o.trace.TraceID, span: s.id})
	_, sp := s.o.t.tracer.Start(ctx, s.name, trace.WithSpanKind(s.kind), trace.WithTimestamp(s.start),
		trace.WithAttributes(s.attrs...))
	if sp.IsRecording() && sp.SpanContext().SpanID() != s.id {
		s.o.t.warnIDs.Do(func() {
			s.o.t.log.Warn("telemetry: the TracerProvider does not take cairn's span ids, so the spans of a run " +
				"will not nest under it; build it with sdktrace.WithIDGenerator(agent.IDGenerator{})")
		})
	}
	if f != nil {
		sp.SetStatus(codes.Error, f.Message)
		sp.SetAttributes(semconv.ErrorTypeKey.String(errorType(f)))
		if f.Kind == backend.KindLost {
			sp.AddEvent("attempt_lost", trace.WithTimestamp(end), trace.WithAttributes(
				attribute.String("cairn.reason", "the worker running the attempt stopped before it finished")))
		}
	}
	sp.End(trace.WithTimestamp(end))
}

// errorType is a failure's error.type: its kind, its Go type, or _OTHER.
func errorType(f *backend.Failure) string {
	switch {
	case f == nil:
		return ""
	case f.Kind != "":
		return string(f.Kind)
	case f.Type != "":
		return f.Type
	}
	return "_OTHER"
}

func outcome(f *backend.Failure) attribute.KeyValue {
	if f != nil {
		return attrOutcome.String("failed")
	}
	return attrOutcome.String("completed")
}
