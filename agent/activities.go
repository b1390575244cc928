package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// modelCall is the input of a model call activity. It crosses the durable
// boundary in memory and is journaled as a hash: the conversation it holds
// is rebuilt by replay, so history grows with the answers only.
type modelCall struct {
	Request providers.Request `json:"request"`
}

// toolCall is the input of a tool call activity.
type toolCall struct {
	CallID    string `json:"call_id"`
	Arguments string `json:"arguments"`
	// Namespace is the run's long-term memory namespace, for the memory
	// tools.
	Namespace string `json:"namespace,omitempty"`
	// Input is what the call's earlier rounds needed (tools.NeedInput),
	// gathered since; Key is the idempotency key of its first round, so
	// that every round of a call shows the tool the same key.
	Input *tools.Input `json:"input,omitempty"`
	Key   string       `json:"key,omitempty"`
}

// toolOutcome is the journaled output of a tool call activity: the result
// the model reads, or the reason a tool gave for stopping the run.
type toolOutcome struct {
	// CallID is the model's id of the call, for traces.
	CallID string       `json:"call_id,omitempty"`
	Result tools.Result `json:"result"`
	// Fatal is the message of a fatal tool error: the run fails with it.
	Fatal string `json:"fatal,omitempty"`
	// Needs is what the call needs before it can finish (the tool
	// returned tools.NeedInput), with the idempotency key it was made
	// with: the loop gets the input and calls the tool again.
	Needs *inputNeed `json:"needs,omitempty"`
}

// inputNeed is the journaled form of a *tools.NeedsInputError.
type inputNeed struct {
	Requests []tools.InputRequest `json:"requests"`
	State    string               `json:"state,omitempty"`
	Key      string               `json:"key"`
}

// Retry defaults of an agent's activities, taken when a RetryPolicy leaves
// MaximumAttempts zero. They cap failed attempts only: attempts lost with
// their worker (a crash, a kill, a lost lease) have their own budget,
// RetryPolicy.MaximumLostAttempts, default
// durable.DefaultMaximumLostAttempts, so a worker's crash is not reported
// to the model as the tool's failure while lost attempts remain.
const (
	// DefaultModelAttempts is the attempts of a model call (and of a
	// summary) that may fail before the run fails, unless
	// Agent.ModelOptions sets MaximumAttempts.
	DefaultModelAttempts = 6
	// DefaultToolAttempts is the attempts of a tool call that may fail
	// (panic, time out, return a retryable error) before the model reads
	// that the tool failed, unless the tool sets MaximumAttempts with
	// tools.Retry. Long-term memory recall uses it too.
	DefaultToolAttempts = 3
)

// defaultArchiveAttempts is the attempts of archiving a conversation's
// messages to long-term memory.
const defaultArchiveAttempts = 10

// define makes the durable definitions of an agent's runs.
func (rt *Runtime) define(a *Agent) *registration {
	r := &registration{agent: a, workflow: rt.workflow(a.Name), tools: map[string]*durable.Activity[toolCall, toolOutcome]{}}
	mo := a.ModelOptions
	if mo.RetryPolicy.MaximumAttempts == 0 {
		mo.RetryPolicy.MaximumAttempts = DefaultModelAttempts
	}
	r.model = durable.NewActivity("model:"+a.Name, rt.callModel(a), mo)
	r.sample = durable.NewActivity("sample:"+a.Name, rt.sample(a), mo)
	if a.Memory != nil && !a.Memory.NoSummary {
		r.summary = durable.NewActivity("summary:"+a.Name, rt.summarize(a), mo)
	}
	r.archive = durable.NewActivity("archive:"+a.Name, rt.archiveMessages, durable.ActivityOptions{
		RetryPolicy: durable.RetryPolicy{MaximumAttempts: defaultArchiveAttempts}})
	var all []*tools.Tool
	if a.Tools != nil {
		all = a.Tools.List()
	}
	if lt := a.LongTerm; lt != nil {
		if lt.Tools {
			r.memoryTools = lt.tools()
			all = append(all, r.memoryTools.List()...)
		}
		if lt.Recall > 0 {
			r.recall = durable.NewActivity("recall:"+a.Name, rt.recallActivity(lt), durable.ActivityOptions{
				RetryPolicy: durable.RetryPolicy{MaximumAttempts: DefaultToolAttempts}})
		}
		if lt.Extractor != nil {
			r.extractor = lt.extractor(a)
		}
	}
	for _, t := range all {
		r.tools[t.Name()] = durable.NewActivity("tool:"+a.Name+"/"+t.Name(), rt.callTool(a, t),
			toolOptions(t.RetryPolicy(), t.Timeout()))
	}
	if len(a.Toolsets) > 0 {
		r.toolsets = durable.NewActivity("toolset:"+a.Name, rt.listToolsets(a), durable.ActivityOptions{
			StartToCloseTimeout: 2 * time.Minute,
			RetryPolicy:         durable.RetryPolicy{MaximumAttempts: DefaultToolsetAttempts}})
	}
	return r
}

// sample is the activity that answers, with agent a's model, a
// completion a tool asked for (an MCP server's sampling request, see
// serveInput): not a turn of the agent, so neither streamed to the run's
// live feed nor read as one from history (evals, the console, the
// transcript read "model:" activities).
func (rt *Runtime) sample(a *Agent) func(context.Context, modelCall) (providers.Response, error) {
	return func(ctx context.Context, c modelCall) (providers.Response, error) {
		rt.tel.recordModelInput(ctx, c.Request)
		return a.Model.Generate(ctx, c.Request)
	}
}

// callModel is the model call activity of agent a: it streams the answer
// to the run's feed as it comes, keyed by step and attempt.
func (rt *Runtime) callModel(a *Agent) func(context.Context, modelCall) (providers.Response, error) {
	return func(ctx context.Context, c modelCall) (providers.Response, error) {
		info, _ := durable.ActivityInfoFrom(ctx)
		rt.tel.recordModelInput(ctx, c.Request)
		if rt.feed == nil {
			return a.Model.Generate(ctx, c.Request)
		}
		base := LiveEvent{Type: LiveTextDelta, Agent: a.Name, Step: info.Step, Attempt: info.Attempt}
		if info.Attempt > 1 {
			// What an earlier attempt streamed is void: readers drop it.
			abandoned := base
			abandoned.Type, abandoned.Attempt = LiveAttemptAbandoned, info.Attempt-1
			rt.publish(info.RunID, abandoned)
		}
		return providers.Stream(ctx, a.Model, c.Request, func(d providers.Delta) error {
			if d.Text != "" {
				delta := base
				delta.Text = d.Text
				rt.publish(info.RunID, delta)
			}
			return nil
		})
	}
}

// summarize is the activity that writes the summary of a compaction, with
// the policy's summarizer or the agent's model.
func (rt *Runtime) summarize(a *Agent) func(context.Context, modelCall) (providers.Response, error) {
	model := cmp.Or(a.Memory.Summarizer, a.Model)
	return func(ctx context.Context, c modelCall) (providers.Response, error) {
		rt.tel.recordModelInput(ctx, c.Request)
		return model.Generate(ctx, c.Request)
	}
}

// callTool is the activity that runs tool t for agent a. The tool gets an
// idempotency key that is the same for every attempt of the call.
func (rt *Runtime) callTool(a *Agent, t *tools.Tool) func(context.Context, toolCall) (toolOutcome, error) {
	return func(ctx context.Context, c toolCall) (toolOutcome, error) { return rt.runTool(ctx, a, t, c) }
}

// runTool runs call c of tool t for agent a, in its activity: it
// publishes the call's start, progress and end to the run's live feed.
func (rt *Runtime) runTool(ctx context.Context, a *Agent, t *tools.Tool, c toolCall) (toolOutcome, error) {
	info, _ := durable.ActivityInfoFrom(ctx)
	rt.tel.recordToolInput(ctx, c.Arguments)
	ev := LiveEvent{Agent: a.Name, Step: info.Step, Attempt: info.Attempt, CallID: c.CallID, Tool: t.Name()}
	started := ev
	started.Type, started.Arguments = LiveToolStarted, c.Arguments
	rt.publish(info.RunID, started)

	if info.Attempt > 1 && !t.HonorsIdempotencyKey() {
		// Not silently: an earlier attempt may have had its effect.
		sc := trace.SpanContextFromContext(ctx)
		rt.log.WarnContext(ctx, "tool called again; it does not honour its idempotency key, so its side effect may happen twice",
			"run_id", info.RunID, "trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String(),
			"tool", t.Name(), "call", c.CallID, "attempt", info.Attempt)
	}
	key := cmp.Or(c.Key, info.IdempotencyKey+"/"+c.CallID)
	ctx = tools.WithIdempotencyKey(ctx, key)
	if c.Input != nil {
		ctx = tools.WithInput(ctx, *c.Input)
	}
	ctx = tools.WithProgress(ctx, func(p tools.Progress) {
		progress := ev
		progress.Type, progress.Progress = LiveToolProgress, &p
		rt.publish(info.RunID, progress)
	})
	if c.Namespace != "" {
		ctx = context.WithValue(ctx, namespaceKey{}, c.Namespace)
	}
	res, err := t.Call(ctx, json.RawMessage(c.Arguments))
	finished := ev
	finished.Type = LiveToolFinished
	switch {
	case err == nil:
		finished.Result = &res
		rt.publish(info.RunID, finished)
		return toolOutcome{CallID: c.CallID, Result: res}, nil
	case tools.IsFatal(err):
		finished.Error = err.Error()
		rt.publish(info.RunID, finished)
		return toolOutcome{CallID: c.CallID, Fatal: err.Error()}, nil
	}
	if ni, ok := tools.AsNeedsInput(err); ok {
		// Not a failure: the loop gets the input and calls again. The
		// requests are checked here, where the verdict is journaled.
		for _, r := range ni.Requests {
			if err := r.Check(); err != nil {
				res := errorResult(fmt.Sprintf("the tool %s asked for input that cannot be given: %v", t.Name(), err))
				finished.Result = &res
				rt.publish(info.RunID, finished)
				return toolOutcome{CallID: c.CallID, Result: res}, nil
			}
		}
		needs := finished
		needs.Type = LiveToolNeedsInput
		for _, r := range ni.Requests {
			r.Sampling = nil // the conversation, maybe long, maybe private
			needs.Input = append(needs.Input, r)
		}
		rt.publish(info.RunID, needs)
		return toolOutcome{CallID: c.CallID, Needs: &inputNeed{Requests: ni.Requests, State: ni.State, Key: key}}, nil
	}
	finished.Type, finished.Error = LiveToolFailed, err.Error()
	rt.publish(info.RunID, finished)
	var panicked *tools.PanicError
	if errors.As(err, &panicked) {
		// Keep the stack in history, in the failure's Stack: the
		// attempt failed as a panic. Its message, which the model
		// reads once the attempts run out, stays free of it.
		return toolOutcome{}, &backend.Failure{Message: err.Error(), Kind: backend.KindPanic,
			Type: fmt.Sprintf("%T", panicked.Value), Stack: panicked.Stack}
	}
	return toolOutcome{}, err
}
