// Package agent runs AI agents as durable workflows.
//
// An Agent is a value: a name, instructions, a model, tools and limits. A
// Runtime binds agents to a durable store. Each run of an agent is a
// durable run whose loop (call the model, run the tools it asks for, call
// the model again, until it answers) is ordinary deterministic Go code, and
// whose every model call and tool call is an activity journaled in the
// run's history. A run that crashes, or is redeployed, is replayed from its
// history: the conversation and the tool results are rebuilt without
// calling the model or a tool again, and the run carries on from the first
// step that had not finished.
//
// On top of the loop, the package offers what agents in production need:
// tool calls run in parallel and journaled in the model's order; human
// approval of chosen tool calls, each on its own, authorised and recorded,
// for as long as it takes (a waiting run holds no worker memory); a tool
// for the model to ask a person a question; tools that need input while
// they run (an MCP server's elicitation and sampling: tools.NeedInput),
// whose questions wait for a person and whose samples are model calls of
// the run, all journaled; structured final answers
// checked against a Go type's schema; handoffs between agents, and agents
// used as tools by others (child runs); long-lived conversations that
// wait for the next user message; and a live feed of each run's progress
// (text as the model writes it, tools started and finished, approvals)
// that a reader can resume after a reconnect.
//
// # Tracing and metrics
//
// A Runtime's workers report every run to OpenTelemetry
// (Options.TracerProvider and Options.MeterProvider; the global providers
// by default, which do nothing until a program sets them). A run is one
// trace, under the span of the code that started it (the span in the
// context given to Start): a span "invoke_agent <agent>" for the run, from
// its start to its end, and under it a span for each model call ("chat
// <model>", kind client), each tool call ("execute_tool <tool>"; a helper
// agent's is the parent of the helper's own run), each wait for a
// decision ("await_approval <tool>") or an answer ("await_answer"), each
// durable timer ("timer"), each summary of a compaction (a "chat <model>"
// span with cairn.memory.summary), each recall of long-term memories
// ("recall_memory"), each listing of its toolsets ("list_tools", with
// cairn.tools.hash and cairn.tools.count), and in a conversation each wait
// for the next message ("await_message"), each exchange from a message to
// its reply ("reply"), and each handoff ("handoff <agent>"). Attributes follow the
// OpenTelemetry GenAI semantic conventions (gen_ai.operation.name, gen_ai.provider.name,
// gen_ai.agent.name, gen_ai.conversation.id = the run id,
// gen_ai.request.model and gen_ai.response.model, gen_ai.response.id,
// gen_ai.response.finish_reasons, gen_ai.usage.*, gen_ai.tool.name,
// gen_ai.tool.call.id, error.type), plus cairn.run.id, cairn.step,
// cairn.attempt, and cairn.replayed (true when the worker that reported
// the span had rebuilt the run from its history). What is said (messages,
// tool arguments and results) is left out unless Options.RecordContent.
//
// The spans are the engine's (durable.Tracing), named by the agent: they
// come from the journal, not from the code as it runs. A worker emits the
// spans of what it has just committed, and replay emits nothing, so a
// step is reported by whichever worker finished it. Span ids are derived
// from the run's trace, the run, the step and the attempt (backend.Trace),
// so the run's span, emitted when the run ends, maybe days later in
// another process, has the id its steps already named as their parent; a
// TracerProvider must be built with durable.IDGenerator for that. A model
// or tool call cut off by a crash is reported by the worker that takes the
// run over, as an attempt that failed with error.type attempt_lost, beside
// the attempt that replaced it. A run is one trace however long it lasts:
// a run that waits a week for an approval has a week-long root span,
// emitted at its end, and its steps appear in the backend as they finish.
// A worker that dies before its batched spans were exported does not lose
// them: the worker that takes the run over sends them again, with the same
// ids (see durable.Tracing for the exact guarantee).
//
// Metrics, counted by the process whose worker wrote what they count
// (what a dead worker had not exported is lost, never counted twice):
// gen_ai.client.token.usage and gen_ai.client.operation.duration
// for model calls; cairn.steps (steps ended, by kind, outcome and
// gen_ai.agent.name), cairn.retries (attempts failed and retried, lost
// ones included, by kind, error.type and gen_ai.agent.name),
// cairn.runs (runs ended or parked, by status) and cairn.approval.wait
// (seconds from a request to its decision). Workflow code's logs
// (durable.Logger) carry run_id and trace_id.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// Defaults for the zero fields of an Agent.
const (
	DefaultMaxTurns       = 10
	DefaultMaxCorrections = 2
	// DefaultConversationLimit is the default Agent.ConversationLimit.
	DefaultConversationLimit = 50
)

// Agent describes an agent. It is a plain value: define it once at start
// up, register it with a Runtime in every process that runs or starts its
// runs, and do not change it while runs are in flight except as a deploy
// (see durable.Version for changing the loop's decisions safely).
type Agent struct {
	// Name names the agent and the durable workflow of its runs. It is
	// 1 to 64 letters, digits, '_' or '-', unique in a Runtime.
	Name string
	// Description says what the agent does, for another agent that hands
	// off to it or calls it as a tool.
	Description string
	// Instructions are the system instructions sent with every request.
	Instructions string
	// Model answers. It is called from activities, never from workflow
	// code, and must be safe for concurrent use.
	Model providers.Model
	// Tools are the tools the model may call. Each call runs as an
	// activity.
	Tools *tools.Set
	// Toolsets are lists of tools learned when a run starts, such as an
	// MCP server's (tools/mcp): each run records the list it was shown,
	// once, in its history (see Toolset).
	Toolsets []Toolset
	// WorkflowTools are tools whose body is workflow code: a durable
	// wait, a child workflow, a signal to wait for.
	WorkflowTools []*WorkflowTool
	// Settings tune generation.
	Settings providers.Settings
	// MaxTurns caps the model calls of a run (of one exchange, in a
	// conversation); past it the run fails with ErrMaxTurns. Default
	// DefaultMaxTurns.
	MaxTurns int
	// TokenBudget caps the tokens (input and output) a run may use; past
	// it the run fails with ErrTokenBudget. 0 means no cap.
	TokenBudget int
	// Output, if set, asks for a structured final answer of a Go type:
	// see OutputOf.
	Output *Output
	// Handoffs are agents the model may hand the conversation to; each is
	// offered as a tool named transfer_to_<name>. The run goes on as the
	// other agent: its instructions, model and tools, same conversation.
	Handoffs []*Agent
	// Helpers are agents the model may call as tools, named after them:
	// each call is a child run of the helper, whose final answer is the
	// tool's result.
	Helpers []*Agent
	// AskHuman offers the model a tool, ask_human, to ask a person a
	// question and wait, durably, for the answer (see Runtime.Answer).
	AskHuman bool
	// Approval says how long a tool call waits for a decision and what
	// happens then. The tools that need approval say so themselves
	// (tools.RequireApproval, tools.RequireApprovalIf).
	Approval ApprovalPolicy
	// ConversationLimit is the number of exchanges after which a
	// conversation run starts a fresh history (continue-as-new), carrying
	// the conversation forward, so that its history does not grow without
	// bound. Default DefaultConversationLimit.
	ConversationLimit int
	// ModelOptions tune the model call activity: its timeout and retry
	// policy. Provider errors say themselves whether they are retryable.
	// MaximumAttempts zero means DefaultModelAttempts; other zero fields
	// take durable's defaults (see durable.RetryPolicy).
	// Summaries (see Memory) are model calls with the same options.
	ModelOptions durable.ActivityOptions
	// Memory bounds what the model sees each turn: a window of the
	// latest messages, and the older ones compacted into a summary and
	// pinned facts (see memory.Policy). Each compaction is a model call
	// journaled as an activity, and recorded in the run's history
	// ("compaction", a memory.Compaction). A conversation carries the
	// compacted state and the window over a continue-as-new, not its
	// transcript: the messages compacted away go to the run's archive,
	// where Runtime.Transcript reads them. Nil: the model sees the whole
	// conversation.
	Memory *memory.Policy
	// LongTerm gives the agent memories of its users that outlive its
	// runs (see LongTerm). Nil: none.
	LongTerm *LongTerm
}

// ApprovalPolicy bounds the wait for approvals.
type ApprovalPolicy struct {
	// Timeout, if set, is how long a call waits for a decision; then
	// OnTimeout applies. Zero waits for ever.
	Timeout time.Duration
	// OnTimeout is the decision taken when Timeout passes: false rejects
	// the call (the default), true approves it.
	OnTimeout bool
}

// Errors of agent runs. A run that ends with one of them fails; its
// *durable.RunError wraps a failure whose message names it.
var (
	// ErrMaxTurns means the model did not give a final answer within the
	// agent's MaxTurns.
	ErrMaxTurns = errors.New("turn limit reached")
	// ErrTokenBudget means the run used more tokens than its TokenBudget.
	ErrTokenBudget = errors.New("token budget exhausted")
	// ErrInvalidOutput means the final answer did not match the agent's
	// Output schema, even after the corrections allowed.
	ErrInvalidOutput = errors.New("invalid structured output")
	// ErrToolFatal means a tool returned a fatal error (tools.Fatal).
	ErrToolFatal = errors.New("fatal tool error")
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Names of the built-in tools.
const (
	AskHumanTool   = "ask_human"
	handoffPrefix  = "transfer_to_"
	maxToolNameLen = 64
)

func (a *Agent) maxTurns() int {
	if a.MaxTurns > 0 {
		return a.MaxTurns
	}
	return DefaultMaxTurns
}

// validate checks an agent and the agents it reaches.
func (a *Agent) validate() error {
	if a == nil {
		return errors.New("agent: nil agent")
	}
	if !namePattern.MatchString(a.Name) {
		return fmt.Errorf("agent %q: the name must be 1 to 64 letters, digits, '_' or '-'", a.Name)
	}
	if a.Model == nil {
		return fmt.Errorf("agent %s: no model", a.Name)
	}
	if a.Memory != nil {
		if err := a.Memory.Validate(); err != nil {
			return fmt.Errorf("agent %s: %w", a.Name, err)
		}
	}
	if err := a.validToolsets(); err != nil {
		return err
	}
	seen := map[string]string{}
	if a.Tools != nil {
		for _, n := range a.Tools.Names() {
			seen[n] = "tool"
		}
	}
	add := func(name, what string) error {
		if !namePattern.MatchString(name) {
			return fmt.Errorf("agent %s: %s name %q must be 1 to 64 letters, digits, '_' or '-'", a.Name, what, name)
		}
		if len(name) > maxToolNameLen {
			return fmt.Errorf("agent %s: %s name %q is longer than %d", a.Name, what, name, maxToolNameLen)
		}
		if prev, ok := seen[name]; ok {
			return fmt.Errorf("agent %s: %s %q has the name of a %s", a.Name, what, name, prev)
		}
		seen[name] = what
		return nil
	}
	for _, t := range a.WorkflowTools {
		if t == nil {
			return fmt.Errorf("agent %s: nil workflow tool", a.Name)
		}
		if err := add(t.Name(), "workflow tool"); err != nil {
			return err
		}
	}
	if a.AskHuman {
		if err := add(AskHumanTool, "built-in tool"); err != nil {
			return err
		}
	}
	if lt := a.LongTerm; lt != nil {
		if err := lt.validate(a); err != nil {
			return err
		}
		if lt.Tools {
			for _, n := range []string{RememberTool, RecallTool, ForgetTool} {
				if err := add(n, "memory tool"); err != nil {
					return err
				}
			}
		}
	}
	for _, h := range a.Handoffs {
		if h == nil {
			return fmt.Errorf("agent %s: nil handoff", a.Name)
		}
		if err := add(handoffPrefix+h.Name, "handoff"); err != nil {
			return err
		}
	}
	for _, h := range a.Helpers {
		if h == nil {
			return fmt.Errorf("agent %s: nil helper", a.Name)
		}
		if err := add(h.Name, "helper agent"); err != nil {
			return err
		}
	}
	return nil
}

// Input is what a run starts with.
type Input struct {
	// Message is the user's message. It may be empty in a conversation,
	// which then waits for the first one.
	Message string `json:"message,omitempty"`
	// History is a conversation to go on from, before Message.
	History []providers.Message `json:"history,omitempty"`
	// Memory is what compactions kept of messages before History (the
	// summary, the pinned facts, the opening message): carried over a
	// continue-as-new when the agent has a memory policy. A caller may
	// set Memory.Pinned: facts the model sees in every prompt.
	Memory *memory.State `json:"memory,omitempty"`
	// Conversation makes the run a chat session: after answering, it
	// waits for the next message (Runtime.Send) instead of ending.
	Conversation bool `json:"conversation,omitempty"`
	// User is who the run acts for: it scopes the agent's long-term
	// memory (Agent.LongTerm). Helper agents and extraction runs get the
	// same user.
	User string `json:"user,omitempty"`
	// Agent is the agent that answers, when it is not the run's own (a
	// conversation carried over after a handoff).
	Agent string `json:"agent,omitempty"`
	// Replies, Usage and Turns are carried over a continue-as-new:
	// Replies are those of the history that ended, recorded again in the
	// new one for readers still waiting for them (Runtime.Reply).
	Replies []Reply         `json:"replies,omitempty"`
	Usage   providers.Usage `json:"usage,omitzero"`
	Turns   int             `json:"turns,omitempty"`
	// LastText and LastOutput, also carried over a continue-as-new, are
	// the answer of the last exchange that succeeded: the result of a
	// conversation that ends before the next one.
	LastText   string          `json:"last_text,omitempty"`
	LastOutput json.RawMessage `json:"last_output,omitempty"`
	// Generation, carried over a continue-as-new too, counts the
	// histories of the conversation before this one: the archive of the
	// messages each one dropped is numbered by it (see
	// Runtime.Transcript). Leave it zero.
	Generation int `json:"generation,omitempty"`
}

// RunResult is what a run ends with.
type RunResult struct {
	// Text is the final answer's text.
	Text string `json:"text"`
	// Output is the final answer as JSON, when the agent has an Output
	// type: decode it with OutputAs.
	Output json.RawMessage `json:"output,omitempty"`
	// Agent is the agent that gave the final answer (after handoffs).
	Agent string `json:"agent"`
	// Messages is the conversation, the input included.
	Messages []providers.Message `json:"messages"`
	// Turns counts the model calls.
	Turns int `json:"turns"`
	// Usage sums the tokens used.
	Usage providers.Usage `json:"usage"`
}

// OutputAs decodes a result's structured output.
func OutputAs[T any](r RunResult) (T, error) {
	var v T
	if r.Output == nil {
		return v, errors.New("agent: the result has no structured output")
	}
	if err := json.Unmarshal(r.Output, &v); err != nil {
		return v, fmt.Errorf("agent: decode output: %w", err)
	}
	return v, nil
}

// Output describes a structured final answer. Make one with OutputOf.
type Output struct {
	check *tools.Tool
	// MaxCorrections is how many times an invalid answer is sent back to
	// the model with what was wrong, before the run fails with
	// ErrInvalidOutput. Default DefaultMaxCorrections; negative: none.
	MaxCorrections int
	// Strict asks the provider to guarantee the schema where it can.
	Strict bool
}

// OutputOf asks for a final answer that is JSON of type T, which must
// encode as a JSON object (a struct). Its JSON Schema, from T's struct tags
// as for tools, is sent to the model; an answer that does not match it is
// fed back for correction.
func OutputOf[T any](name, description string) (*Output, error) {
	check, err := tools.New(name, description, func(context.Context, T) (struct{}, error) { return struct{}{}, nil })
	if err != nil {
		return nil, fmt.Errorf("agent: output type: %w", err)
	}
	return &Output{check: check}, nil
}

func (o *Output) schema() *providers.OutputSchema {
	return &providers.OutputSchema{Name: o.check.Name(), Description: o.check.Description(),
		Schema: o.check.Schema(), Strict: o.Strict}
}

func (o *Output) corrections() int {
	switch {
	case o.MaxCorrections < 0:
		return 0
	case o.MaxCorrections == 0:
		return DefaultMaxCorrections
	}
	return o.MaxCorrections
}
