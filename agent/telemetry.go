package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
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

// cairn's own span and metric attributes, beside the engine's (cairn.run.id,
// cairn.step, cairn.attempt, cairn.replayed, ...: see durable.Tracing).
const (
	attrRunStatus = attribute.Key("cairn.run.status")
	attrStepKind  = attribute.Key("cairn.step.kind")
	attrOutcome   = attribute.Key("cairn.step.outcome")
	attrApproved  = attribute.Key("cairn.approval.approved")
	attrDecidedBy = attribute.Key("cairn.approval.by")
	attrReason    = attribute.Key("cairn.approval.reason")
)

// telemetry gives agents' runs their spans and metrics. The engine emits
// the spans (durable.Tracing), from committed events only, with ids
// derived from the run, the step and the attempt, and sends them again
// after a crash; describe names them as the GenAI conventions do. Metrics
// come from what this process's workers write (observe).
type telemetry struct {
	tp      trace.TracerProvider
	lookup  func(name string) (*registration, bool)
	content *contentCache // nil unless content is recorded

	tokenUsage   genaiconv.ClientTokenUsage
	opDuration   genaiconv.ClientOperationDuration
	steps        metric.Int64Counter
	retries      metric.Int64Counter
	runs         metric.Int64Counter
	approvalWait metric.Float64Histogram
}

func newTelemetry(opts Options, log *slog.Logger, lookup func(string) (*registration, bool)) *telemetry {
	tp, mp := opts.TracerProvider, opts.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	t := &telemetry{tp: tp, lookup: lookup}
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
		metric.WithDescription("Time from an approval request to its decision."),
		// From seconds to a week: people take minutes or days.
		metric.WithExplicitBucketBoundaries(1, 5, 15, 30, 60, 300, 900, 1800, 3600, 3*3600, 8*3600,
			86400, 2*86400, 4*86400, 7*86400))
	check(err)
	for _, err := range errs {
		// A meter that refuses an instrument gives a no-op one: the
		// runs go on, without that metric.
		log.Warn("telemetry: create instrument", "err", err)
	}
	return t
}

// describe shapes the span the engine is about to emit for an event of an
// agent's run (durable.Tracing.Describe): GenAI names and attributes for
// model and tool calls, the agent's run, its waits for people and for
// messages, its handoffs and replies. Spans of other workflows' runs are
// left as the engine made them.
func (t *telemetry) describe(s *durable.Span) {
	if _, ok := t.lookup(s.Run.Workflow); !ok {
		return
	}
	e := s.Event
	switch e.Type {
	case backend.EventActivityCompleted, backend.EventActivityAttemptFailed, backend.EventActivityFailed:
		t.activitySpan(s)
	case backend.EventTimerFired:
		t.stepAttrs(s, s.Run.Workflow)
	case backend.EventChildCompleted:
		// A child of an agent run is a helper agent, called as a tool.
		s.Name = "execute_tool " + e.Name
		t.stepAttrs(s, s.Run.Workflow)
		s.Attributes = append(s.Attributes, semconv.GenAIOperationNameExecuteTool, semconv.GenAIToolName(e.Name),
			semconv.GenAIToolType("function"))
	case backend.EventSignalReceived:
		if e.Name != messageSignal.Name() {
			// Decisions and answers have spans of their own, from the
			// records that journal them: await_approval, await_answer.
			s.Drop = true
			return
		}
		// A conversation waited for its next message.
		s.Name = "await_message"
		t.stepAttrs(s, s.Run.Workflow)
	case backend.EventSideEffect:
		t.recordSpan(s)
	case backend.EventRunCompleted, backend.EventRunFailed, backend.EventRunCanceled:
		t.runSpan(s)
	}
}

// stepAttrs adds the attributes of every span of an agent's step.
func (t *telemetry) stepAttrs(s *durable.Span, agent string) {
	s.Attributes = append(s.Attributes, semconv.GenAIAgentName(agent), semconv.GenAIConversationID(s.Run.ID))
}

// callKind classifies an activity of an agent's run by its name: a model
// call ("chat", summary set for a compaction's), a tool call ("tool"), a
// recall from long-term memory ("recall"), the listing of toolsets
// ("toolset"), or another activity. agent is the agent that made it, tool
// the tool called.
func callKind(name string) (kind, agent, tool string, summary bool) {
	switch {
	case strings.HasPrefix(name, "model:") || strings.HasPrefix(name, "summary:"):
		agent, summary = strings.CutPrefix(name, "summary:")
		return "chat", strings.TrimPrefix(agent, "model:"), "", summary
	case strings.HasPrefix(name, "sample:"):
		// A completion a tool asked for, by the agent's model.
		return "chat", strings.TrimPrefix(name, "sample:"), "", false
	case strings.HasPrefix(name, "tool:"):
		agent, tool, _ = strings.Cut(strings.TrimPrefix(name, "tool:"), "/")
		return "tool", agent, tool, false
	case strings.HasPrefix(name, "recall:"):
		return "recall", strings.TrimPrefix(name, "recall:"), "", false
	case strings.HasPrefix(name, "toolset:"):
		return "toolset", strings.TrimPrefix(name, "toolset:"), "", false
	}
	return "activity", "", "", false
}

// chatModel is what the model of a chat call says it is.
func (t *telemetry) chatModel(agent string, summary bool) providers.Info {
	reg, ok := t.lookup(agent)
	if !ok {
		return providers.Info{}
	}
	if a := reg.agent; summary && a.Memory != nil && a.Memory.Summarizer != nil {
		return modelInfo(a.Memory.Summarizer)
	}
	return modelInfo(reg.agent.Model)
}

// activitySpan shapes the span of an activity attempt: a model call, a
// tool call, a recall, a listing of tools.
func (t *telemetry) activitySpan(s *durable.Span) {
	e := s.Event
	kind, agent, tool, summary := callKind(e.Name)
	t.stepAttrs(s, cmp.Or(agent, s.Run.Workflow))
	switch kind {
	case "chat":
		model := t.chatModel(agent, summary)
		s.Name, s.Kind = spanName("chat", model.Model), trace.SpanKindClient
		s.Attributes = append(s.Attributes, semconv.GenAIOperationNameChat)
		if summary {
			s.Attributes = append(s.Attributes, attribute.Bool("cairn.memory.summary", true))
		}
		if strings.HasPrefix(e.Name, "sample:") {
			s.Attributes = append(s.Attributes, attribute.Bool("cairn.tool.sampling", true))
		}
		s.Attributes = append(s.Attributes, modelAttrs(model)...)
		var resp providers.Response
		if e.Type == backend.EventActivityCompleted && json.Unmarshal(e.Payload, &resp) == nil {
			s.Attributes = append(s.Attributes, t.responseAttrs(resp)...)
		}
	case "tool":
		s.Name = "execute_tool " + tool
		s.Attributes = append(s.Attributes, semconv.GenAIOperationNameExecuteTool, semconv.GenAIToolName(tool),
			semconv.GenAIToolType("function"))
		var out toolOutcome
		if e.Type == backend.EventActivityCompleted && json.Unmarshal(e.Payload, &out) == nil {
			if out.CallID != "" {
				s.Attributes = append(s.Attributes, semconv.GenAIToolCallID(out.CallID))
			}
			switch {
			case out.Fatal != "":
				s.Failure = &backend.Failure{Message: out.Fatal, Type: "fatal"}
			case out.Result.IsError:
				// The model reads the error; the call itself worked.
				s.Attributes = append(s.Attributes, attribute.Bool("cairn.tool.result_is_error", true))
			}
			if t.content != nil {
				s.Attributes = append(s.Attributes, semconv.GenAIToolCallResultKey.String(out.Result.Content))
			}
		}
	case "recall":
		s.Name = "recall_memory"
	case "toolset":
		s.Name = "list_tools"
		var list toolList
		if e.Type == backend.EventActivityCompleted && json.Unmarshal(e.Payload, &list) == nil {
			s.Attributes = append(s.Attributes, attribute.String("cairn.tools.hash", list.Hash), attribute.Int("cairn.tools.count", len(list.Tools)))
		}
	default:
		s.Name = e.Name
	}
	if t.content != nil && (kind == "chat" || kind == "tool") {
		if in, ok := t.content.take(s.ID); ok {
			s.Attributes = append(s.Attributes, in...)
		}
	}
}

// responseAttrs are the attributes of a chat span that a model's answer
// gives.
func (t *telemetry) responseAttrs(resp providers.Response) []attribute.KeyValue {
	var attrs []attribute.KeyValue
	if resp.Model != "" {
		attrs = append(attrs, semconv.GenAIResponseModel(resp.Model))
	}
	if resp.ID != "" {
		attrs = append(attrs, semconv.GenAIResponseID(resp.ID))
	}
	if resp.FinishReason != "" {
		attrs = append(attrs, semconv.GenAIResponseFinishReasons(string(resp.FinishReason)))
	}
	attrs = append(attrs, semconv.GenAIUsageInputTokens(resp.Usage.InputTokens),
		semconv.GenAIUsageOutputTokens(resp.Usage.OutputTokens))
	if t.content != nil {
		attrs = append(attrs, semconv.GenAIOutputMessagesKey.String(outputMessages(resp)))
	}
	return attrs
}

// recordSpan keeps, as a span, a record the loop journals that ends a wait
// for a person or a piece of work (a decision, an answer, a workflow
// tool's end), or that marks a moment (a handoff, a reply); it leaves
// other records out.
func (t *telemetry) recordSpan(s *durable.Span) {
	e := s.Event
	var r record
	switch e.Name {
	case recApprovalDecided, recQuestionAnswered, recToolFinished, recHandoff, recReply:
		if json.Unmarshal(e.Payload, &r) != nil {
			return
		}
	default:
		return
	}
	if e.Name == recReply && r.Since.IsZero() {
		// A reply of an earlier history, recorded again in this one
		// (or one written before replies kept when their exchange began).
		return
	}
	s.Drop = false
	if !r.Since.IsZero() {
		s.Start = r.Since
	}
	t.stepAttrs(s, cmp.Or(r.Agent, s.Run.Workflow))
	switch e.Name {
	case recApprovalDecided:
		s.Name = "await_approval " + r.Tool
		s.Attributes = append(s.Attributes, semconv.GenAIToolName(r.Tool), semconv.GenAIToolCallID(r.CallID),
			attrApproved.Bool(r.Approved), attrDecidedBy.String(r.By))
		if r.Reason != "" {
			s.Attributes = append(s.Attributes, attrReason.String(r.Reason))
		}
	case recQuestionAnswered:
		s.Name = "await_answer"
		s.Attributes = append(s.Attributes, semconv.GenAIToolName(AskHumanTool), semconv.GenAIToolCallID(r.CallID),
			attribute.String("cairn.answer.by", r.By))
	case recToolFinished:
		s.Name = "execute_tool " + r.Tool
		if r.Opened > 0 {
			s.ID = s.Trace.StepSpanID(s.Run.ID, s.Generation, r.Opened, 0)
		}
		s.Attributes = append(s.Attributes, semconv.GenAIOperationNameExecuteTool, semconv.GenAIToolName(r.Tool),
			semconv.GenAIToolCallID(r.CallID), semconv.GenAIToolType("function"))
		if t.content != nil && r.Result != nil {
			s.Attributes = append(s.Attributes, semconv.GenAIToolCallResultKey.String(r.Result.Content))
		}
	case recHandoff:
		s.Name = "handoff " + r.To
		s.Attributes = append(s.Attributes, attribute.String("cairn.handoff.from", r.Agent), attribute.String("cairn.handoff.to", r.To))
	case recReply:
		// The exchange: from the message to the reply.
		s.Name = "reply"
		if r.MessageID != "" {
			s.Attributes = append(s.Attributes, attribute.String("cairn.message.id", r.MessageID))
		}
		if r.Error != "" {
			s.Failure = &backend.Failure{Message: r.Error}
		}
	}
}

// runSpan shapes the span of an agent's run: from its creation, across
// all its histories, to its end.
func (t *telemetry) runSpan(s *durable.Span) {
	run := s.Run
	s.Name = "invoke_agent " + run.Workflow
	s.Attributes = append(s.Attributes, semconv.GenAIOperationNameInvokeAgent, semconv.GenAIAgentName(run.Workflow),
		semconv.GenAIAgentID(run.Workflow), semconv.GenAIConversationID(run.ID))
	if reg, ok := t.lookup(run.Workflow); ok {
		s.Attributes = append(s.Attributes, modelAttrs(modelInfo(reg.agent.Model))...)
		if d := reg.agent.Description; d != "" {
			s.Attributes = append(s.Attributes, semconv.GenAIAgentDescription(d))
		}
	}
	var res RunResult
	if s.Event.Type == backend.EventRunCompleted && json.Unmarshal(s.Event.Payload, &res) == nil {
		s.Attributes = append(s.Attributes, semconv.GenAIUsageInputTokens(res.Usage.InputTokens),
			semconv.GenAIUsageOutputTokens(res.Usage.OutputTokens), attribute.Int("cairn.turns", res.Turns))
		if res.Agent != "" && res.Agent != run.Workflow {
			s.Attributes = append(s.Attributes, attribute.String("cairn.final_agent", res.Agent))
		}
	}
}

// observe records the metrics of one write to a run. Metrics count what
// this process wrote: a worker that dies loses what its reader had not
// exported, and nothing counts it again.
func (t *telemetry) observe(ctx context.Context, w durable.Written) {
	for _, e := range w.Previous {
		t.count(ctx, w.Run, e)
	}
	for _, e := range w.Events {
		t.count(ctx, w.Run, e)
	}
	if w.Run.Status == backend.StatusParked {
		t.runs.Add(ctx, 1, metric.WithAttributes(attrRunStatus.String(string(backend.StatusParked)),
			semconv.GenAIAgentName(w.Run.Workflow)))
	}
}

// count records the metrics of one event.
func (t *telemetry) count(ctx context.Context, run backend.RunInfo, e backend.Event) {
	switch e.Type {
	case backend.EventActivityCompleted, backend.EventActivityAttemptFailed, backend.EventActivityFailed:
		t.countActivity(ctx, run, e)
	case backend.EventTimerFired:
		t.steps.Add(ctx, 1, metric.WithAttributes(attrStepKind.String("timer"), attrOutcome.String("completed"),
			semconv.GenAIAgentName(run.Workflow)))
	case backend.EventChildCompleted:
		t.steps.Add(ctx, 1, metric.WithAttributes(attrStepKind.String("child"), outcome(e.Failure),
			semconv.GenAIAgentName(run.Workflow)))
	case backend.EventSideEffect:
		var r record
		switch {
		case e.Name == recToolFinished:
			t.steps.Add(ctx, 1, metric.WithAttributes(attrStepKind.String("workflow_tool"), outcome(nil),
				semconv.GenAIAgentName(run.Workflow)))
		case e.Name == recApprovalDecided && json.Unmarshal(e.Payload, &r) == nil && !r.Since.IsZero():
			t.approvalWait.Record(ctx, e.Time.Sub(r.Since).Seconds(), metric.WithAttributes(
				attrApproved.Bool(r.Approved), semconv.GenAIAgentName(run.Workflow)))
		}
	case backend.EventRunCompleted, backend.EventRunFailed, backend.EventRunCanceled:
		t.runs.Add(ctx, 1, metric.WithAttributes(attrRunStatus.String(string(run.Status)),
			semconv.GenAIAgentName(run.Workflow)))
	}
}

// countActivity records the metrics of the end of an activity attempt:
// steps and retries (by the agent that made the call), and for model calls
// their duration and tokens.
func (t *telemetry) countActivity(ctx context.Context, run backend.RunInfo, e backend.Event) {
	kind, agent, _, summary := callKind(e.Name)
	agentName := semconv.GenAIAgentName(cmp.Or(agent, run.Workflow))
	failure := e.Failure
	if kind == "chat" {
		model := t.chatModel(agent, summary)
		attrs := modelAttrs(model)
		provider := genaiconv.ProviderNameAttr(providerName(model))
		var resp providers.Response
		if e.Type == backend.EventActivityCompleted && json.Unmarshal(e.Payload, &resp) == nil {
			tokens := attrs
			if resp.Model != "" {
				tokens = append(slices.Clip(attrs), semconv.GenAIResponseModel(resp.Model))
			}
			t.tokenUsage.Record(ctx, int64(resp.Usage.InputTokens), genaiconv.OperationNameChat, provider,
				genaiconv.TokenTypeInput, tokens...)
			t.tokenUsage.Record(ctx, int64(resp.Usage.OutputTokens), genaiconv.OperationNameChat, provider,
				genaiconv.TokenTypeOutput, tokens...)
		}
		if failure != nil {
			attrs = append(attrs, semconv.ErrorTypeKey.String(failure.ErrorType()))
		}
		t.opDuration.Record(ctx, e.Time.Sub(e.Started).Seconds(), genaiconv.OperationNameChat, provider, attrs...)
	}
	if kind == "tool" && e.Type == backend.EventActivityCompleted {
		var out toolOutcome
		if json.Unmarshal(e.Payload, &out) == nil && out.Fatal != "" {
			failure = &backend.Failure{Message: out.Fatal, Type: "fatal"}
		}
	}
	if e.Type == backend.EventActivityAttemptFailed {
		t.retries.Add(ctx, 1, metric.WithAttributes(attrStepKind.String(kind),
			semconv.ErrorTypeKey.String(e.Failure.ErrorType()), agentName))
		return
	}
	t.steps.Add(ctx, 1, metric.WithAttributes(attrStepKind.String(kind), outcome(failure), agentName))
}

// modelInfo says what a model is, if it can.
func modelInfo(m providers.Model) providers.Info {
	if d, ok := m.(providers.Describer); ok {
		return d.Describe()
	}
	return providers.Info{}
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

func outcome(f *backend.Failure) attribute.KeyValue {
	if f != nil {
		return attrOutcome.String("failed")
	}
	return attrOutcome.String("completed")
}
