package agent

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// The names of what the loop records in history (durable.Record), which
// the client reads back: pending approvals and questions, replies.
const (
	recApprovalRequested = "approval_requested"
	recApprovalDecided   = "approval_decided"
	recDecisionRefused   = "decision_refused"
	recQuestionAsked     = "question_asked"
	recQuestionAnswered  = "question_answered"
	recHandoff           = "handoff"
	recReply             = "reply"
	recToolStarted       = "workflow_tool_started"
	recToolFinished      = "workflow_tool_finished"
	recCompaction        = "compaction"
)

// record is the payload of what the loop records.
type record struct {
	Agent     string    `json:"agent,omitempty"`
	Turn      int       `json:"turn,omitempty"`
	CallID    string    `json:"call_id,omitempty"`
	Tool      string    `json:"tool,omitempty"`
	Arguments string    `json:"arguments,omitempty"`
	Deadline  time.Time `json:"deadline,omitzero"`
	Approved  bool      `json:"approved,omitempty"`
	By        string    `json:"by,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	// Text is a question, an answer, a reply; To is a handoff's target.
	Text      string        `json:"text,omitempty"`
	To        string        `json:"to,omitempty"`
	MessageID string        `json:"message_id,omitempty"`
	Error     string        `json:"error,omitempty"`
	Result    *tools.Result `json:"result,omitempty"`
	// Since is, on what ends a wait or a piece of work (a decision, an
	// answer, a workflow tool's end), when it began.
	Since time.Time `json:"since,omitzero"`
	// Opened is, on a workflow tool's end, the step of the record of its
	// start: the tool's span has that step's span id, and the steps the
	// tool took hang under it (durable.WithinStep).
	Opened int `json:"opened,omitempty"`
	// Of a tool's question to a person (an MCP server's elicitation,
	// see serveInput): the request's id in the call, the JSON Schema
	// the answer must match or the URL to visit; of its answer, the
	// person's action (tools.ActionAccept, ...).
	Input  string          `json:"input,omitempty"`
	Schema json.RawMessage `json:"schema,omitempty"`
	URL    string          `json:"url,omitempty"`
	Action string          `json:"action,omitempty"`
}

// The signals a run receives from Runtime's client methods.
var (
	decisionSignal = durable.NewSignal[decisionMsg]("cairn.approval")
	answerSignal   = durable.NewSignal[answerMsg]("cairn.answer")
	messageSignal  = durable.NewSignal[userMessage]("cairn.message")
)

// decisionMsg approves or rejects the call CallID of turn Turn.
type decisionMsg struct {
	Turn     int    `json:"turn"`
	CallID   string `json:"call_id"`
	Approved bool   `json:"approved"`
	By       string `json:"by"`
	Reason   string `json:"reason,omitempty"`
}

// answerMsg answers the question asked by call CallID of turn Turn.
type answerMsg struct {
	Turn   int    `json:"turn"`
	CallID string `json:"call_id"`
	By     string `json:"by"`
	Text   string `json:"text"`
	// Action answers a tool's question (Answer.Action).
	Action string `json:"action,omitempty"`
}

// userMessage is a message to a conversation.
type userMessage struct {
	ID   string `json:"id"`
	Text string `json:"text,omitempty"`
	// End ends the conversation: the run completes.
	End bool `json:"end,omitempty"`
}

// state is a run's conversation, as the loop rebuilds it.
type state struct {
	reg *registration
	// messages are those of this generation of the run, the carried
	// window included; the model sees messages[window:], after what
	// compactions kept of the others (mem).
	messages []providers.Message
	window   int
	mem      memory.State
	usage    providers.Usage
	turns    int
	// user is the run's user; recalled, the memories recalled for the
	// exchange under way.
	user     string
	recalled []recalled
	// lists are the listings of the toolsets of the agents that have
	// answered in this run (or generation), by agent name.
	lists map[string]*listing
}

// namespace is the run's long-term memory namespace, "" if it has none.
func (st *state) namespace() string {
	if lt := st.reg.agent.LongTerm; lt != nil {
		return lt.namespace(st.user)
	}
	return ""
}

// loop is the workflow of every agent run. It is deterministic: all it
// learns from the world comes from journaled activities and signals.
func (rt *Runtime) loop(ctx durable.Context, in Input) (RunResult, error) {
	return rt.loopWith(ctx, in, nil)
}

// loopWith is loop, showing its state to seen, if not nil, as soon as it
// makes it: a replay reads the conversation from it (see Runtime.Transcript).
func (rt *Runtime) loopWith(ctx durable.Context, in Input, seen func(*state)) (RunResult, error) {
	name := cmp.Or(in.Agent, ctx.Workflow())
	reg, ok := rt.lookup(name)
	if !ok {
		return RunResult{}, durable.NonRetryable(fmt.Errorf("agent %s is not registered with this worker's runtime", name))
	}
	st := &state{reg: reg, messages: slices.Clone(in.History), usage: in.Usage, turns: in.Turns, user: in.User}
	if in.Memory != nil {
		st.mem = *in.Memory
	}
	if seen != nil {
		seen(st)
	}
	if in.Conversation {
		return rt.converse(ctx, st, in)
	}
	if in.Message != "" {
		st.messages = append(st.messages, providers.Message{Role: providers.RoleUser, Content: in.Message})
	}
	return rt.exchange(ctx, st)
}

// converse runs a chat session: it answers each message sent to the run,
// and starts a fresh history every ConversationLimit exchanges.
func (rt *Runtime) converse(ctx durable.Context, st *state, in Input) (RunResult, error) {
	limit := cmp.Or(st.reg.agent.ConversationLimit, DefaultConversationLimit)
	next := userMessage{Text: in.Message}
	last := st.result(in.LastText, in.LastOutput)
	// The replies of the previous history are recorded again, so that a
	// reader waiting for one of them finds it in this one.
	for _, r := range in.Replies {
		if err := durable.Record(ctx, recReply, record{Agent: r.Agent, MessageID: r.MessageID, Text: r.Text, Error: r.Error}); err != nil {
			return last, err
		}
	}
	var replies []Reply // given in this history
	for exchanges := 0; ; {
		if exchanges >= limit {
			// What the model sees goes on: the compacted state and
			// the window. The messages compacted away go to the
			// run's archive, for its transcript.
			if err := rt.archiveDropped(ctx, st, in.Generation); err != nil {
				return last, err
			}
			next := Input{Conversation: true, History: st.messages[st.window:], User: st.user,
				Agent: st.reg.agent.Name, Replies: replies, Usage: st.usage, Turns: st.turns,
				LastText: last.Text, LastOutput: last.Output, Generation: in.Generation + 1}
			if !st.mem.IsZero() {
				next.Memory = &st.mem
			}
			return RunResult{}, durable.ContinueAsNew(ctx, next)
		}
		if next.Text == "" {
			m, err := messageSignal.Receive(ctx)
			if err != nil {
				if errors.Is(err, durable.ErrCanceled) {
					return last, err
				}
				durable.Logger(ctx).Warn("undecodable message ignored", "err", err)
				continue
			}
			if m.End {
				return last, nil
			}
			next = m
		}
		began := durable.Now(ctx)
		st.messages = append(st.messages, providers.Message{Role: providers.RoleUser, Content: next.Text})
		res, err := rt.exchange(ctx, st)
		rep := record{Agent: st.reg.agent.Name, MessageID: next.ID, Text: res.Text, Since: began}
		switch {
		case errors.Is(err, ErrMaxTurns), errors.Is(err, ErrInvalidOutput), errors.Is(err, ErrTokenBudget):
			// The session outlives one failed exchange; the sender
			// is told.
			rep.Error = err.Error()
		case err != nil:
			return res, err
		default:
			last = res
		}
		if err := durable.Record(ctx, recReply, rep); err != nil {
			return res, err
		}
		replies = append(replies, Reply{MessageID: rep.MessageID, Agent: rep.Agent, Text: rep.Text, Error: rep.Error})
		next = userMessage{}
		exchanges++
	}
}

// exchange calls the model and runs the tools it asks for until it gives a
// final answer.
func (rt *Runtime) exchange(ctx durable.Context, st *state) (RunResult, error) {
	corrections := 0
	from := len(st.messages) - 1 // the exchange's message
	if err := st.recall(ctx); err != nil {
		return st.result("", nil), err
	}
	for turn := 0; ; turn++ {
		a := st.reg.agent
		if turn >= a.maxTurns() {
			return st.result("", nil), fmt.Errorf("agent %s: %w (%d turns)", a.Name, ErrMaxTurns, a.maxTurns())
		}
		if _, err := st.listed(ctx, rt); err != nil {
			return st.result("", nil), err
		}
		if err := st.compact(ctx); err != nil {
			return st.result("", nil), err
		}
		req := st.request()
		resp, err := durable.Execute(ctx, st.reg.model, modelCall{Request: req})
		if err != nil {
			return st.result("", nil), fmt.Errorf("agent %s: model call: %w", a.Name, err)
		}
		st.calibrate(req, resp.Usage)
		st.turns++
		st.usage = addUsage(st.usage, resp.Usage)
		msg := resp.Message
		msg.Role = providers.RoleAssistant
		st.messages = append(st.messages, msg)
		if a.TokenBudget > 0 && st.usage.InputTokens+st.usage.OutputTokens > a.TokenBudget {
			return st.result("", nil), fmt.Errorf("agent %s: %w: %d tokens used, budget %d", a.Name, ErrTokenBudget,
				st.usage.InputTokens+st.usage.OutputTokens, a.TokenBudget)
		}
		if len(msg.ToolCalls) > 0 {
			if err := rt.runTools(ctx, st, msg.ToolCalls); err != nil {
				return st.result("", nil), err
			}
			continue
		}
		if a.Output == nil {
			st.extract(ctx, rt, from)
			return st.result(msg.Content, nil), nil
		}
		if resp.Refusal != "" {
			return st.result("", nil), fmt.Errorf("agent %s: %w: the model refused: %s", a.Name, ErrInvalidOutput, resp.Refusal)
		}
		problem := a.Output.check.Validate(json.RawMessage(msg.Content))
		if problem == nil {
			st.extract(ctx, rt, from)
			return st.result(msg.Content, json.RawMessage(msg.Content)), nil
		}
		if corrections >= a.Output.corrections() {
			return st.result(msg.Content, nil), fmt.Errorf("agent %s: %w: %v", a.Name, ErrInvalidOutput, problem)
		}
		corrections++
		st.messages = append(st.messages, providers.Message{Role: providers.RoleUser,
			Content: "Your answer is not valid JSON for the required schema: " + problem.Error() +
				"\nAnswer again with only the corrected JSON."})
	}
}

// request is the model request for the conversation so far.
func (st *state) request() providers.Request {
	a := st.reg.agent
	req := providers.Request{System: st.mem.System(a.Instructions) + memorySection(st.recalled),
		Messages: st.mem.Messages(st.messages[st.window:]), Settings: a.Settings}
	for _, set := range []*tools.Set{a.Tools, st.memoryTools(), st.listedTools()} {
		if set == nil {
			continue
		}
		for _, d := range set.Definitions() {
			req.Tools = append(req.Tools, providers.ToolDefinition{Name: d.Name, Description: d.Description, Parameters: d.Parameters})
		}
	}
	for _, t := range a.WorkflowTools {
		d := t.schema.Definition()
		req.Tools = append(req.Tools, providers.ToolDefinition{Name: d.Name, Description: d.Description, Parameters: d.Parameters})
	}
	if a.AskHuman {
		req.Tools = append(req.Tools, providers.ToolDefinition{Name: AskHumanTool,
			Description: "Ask a person a question and wait for the answer. Use it when you need information or a decision only a person can give.",
			Parameters:  json.RawMessage(`{"type":"object","properties":{"question":{"type":"string","description":"the question, self-contained"}},"required":["question"],"additionalProperties":false}`)})
	}
	for _, h := range a.Handoffs {
		req.Tools = append(req.Tools, providers.ToolDefinition{Name: handoffPrefix + h.Name,
			Description: "Hand the conversation over to the agent " + h.Name + ". " + h.Description,
			Parameters:  json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`)})
	}
	for _, h := range a.Helpers {
		req.Tools = append(req.Tools, providers.ToolDefinition{Name: h.Name,
			Description: cmp.Or(h.Description, "Ask the agent "+h.Name+"."),
			Parameters:  json.RawMessage(`{"type":"object","properties":{"input":{"type":"string","description":"what to ask the agent"}},"required":["input"],"additionalProperties":false}`)})
	}
	if a.Output != nil {
		req.Output = a.Output.schema()
	}
	return req
}

func (st *state) result(text string, output json.RawMessage) RunResult {
	return RunResult{Text: text, Output: output, Agent: st.reg.agent.Name, Messages: st.messages,
		Turns: st.turns, Usage: st.usage}
}

func addUsage(a, b providers.Usage) providers.Usage {
	return providers.Usage{InputTokens: a.InputTokens + b.InputTokens, OutputTokens: a.OutputTokens + b.OutputTokens,
		TotalTokens: a.TotalTokens + b.TotalTokens, CachedInputTokens: a.CachedInputTokens + b.CachedInputTokens,
		ReasoningTokens: a.ReasoningTokens + b.ReasoningTokens}
}

// turnTools is the work of one turn's tool calls.
type turnTools struct {
	rt      *Runtime
	st      *state
	calls   []providers.ToolCall
	results []tools.Result
	// Futures of calls in flight, by call index.
	tools    map[int]durable.Future[toolOutcome]
	children map[int]durable.Future[RunResult]
	inline   map[int]durable.Future[tools.Result]
	// Calls waiting for a person, by call index, with when they were
	// put to that person.
	approvals map[int]time.Time
	questions map[int]time.Time
	// Tool calls waiting for a person's answer to what the tool asked
	// (serveInput), with the request and, once answered, the response.
	elicits map[int]time.Time
	asking  map[int]tools.InputRequest
	replies map[int]tools.InputResponse
	// What the tool activities ended with (settleTools), by call index.
	settled map[int]settledCall
	handoff *registration
}

// runTools runs a turn's tool calls, in parallel, each as an activity
// keyed by its position in the model's answer (so replay gives the same
// steps whatever order they finish in), waiting for approvals and answers
// where needed, and appends their results in the model's order.
func (rt *Runtime) runTools(ctx durable.Context, st *state, calls []providers.ToolCall) error {
	tt := &turnTools{rt: rt, st: st, calls: calls, results: make([]tools.Result, len(calls)),
		tools: map[int]durable.Future[toolOutcome]{}, children: map[int]durable.Future[RunResult]{},
		inline:    map[int]durable.Future[tools.Result]{},
		approvals: map[int]time.Time{}, questions: map[int]time.Time{}, elicits: map[int]time.Time{},
		asking: map[int]tools.InputRequest{}, replies: map[int]tools.InputResponse{}, settled: map[int]settledCall{}}
	for i := range calls {
		if err := tt.begin(ctx, i); err != nil {
			return err
		}
	}
	if err := tt.awaitPeople(ctx); err != nil {
		return err
	}
	if err := tt.settleTools(ctx); err != nil {
		return err
	}
	for i := range calls {
		if err := tt.finish(ctx, i); err != nil {
			return err
		}
		st.messages = append(st.messages, providers.Message{Role: providers.RoleTool, ToolCallID: calls[i].ID,
			Content: tt.results[i].Content})
	}
	if tt.handoff != nil {
		st.reg = tt.handoff
	}
	return nil
}

// begin starts call i, or settles it at once, or puts it aside for a
// person.
func (tt *turnTools) begin(ctx durable.Context, i int) error {
	a, c := tt.st.reg.agent, tt.calls[i]
	rec := record{Agent: a.Name, Turn: tt.st.turns, CallID: c.ID, Tool: c.Name, Arguments: c.Arguments}
	if a.AskHuman && c.Name == AskHumanTool {
		var q struct{ Question string }
		if err := json.Unmarshal([]byte(c.Arguments), &q); err != nil || strings.TrimSpace(q.Question) == "" {
			tt.results[i] = errorResult(`ask_human needs arguments {"question": "..."} with a question`)
			return nil
		}
		rec.Text = q.Question
		tt.questions[i] = durable.Now(ctx)
		return durable.Record(ctx, recQuestionAsked, rec)
	}
	if target, ok := strings.CutPrefix(c.Name, handoffPrefix); ok {
		if h := findAgent(a.Handoffs, target); h != nil {
			if tt.handoff != nil {
				tt.results[i] = errorResult("ignored: the conversation was already handed to " + tt.handoff.agent.Name)
				return nil
			}
			reg, ok := tt.rt.lookup(h.Name)
			if !ok {
				return durable.NonRetryable(fmt.Errorf("agent %s is not registered", h.Name))
			}
			tt.handoff = reg
			tt.results[i] = tools.Result{Content: fmt.Sprintf(`{"transferred_to":%q}`, h.Name)}
			rec.To = h.Name
			return durable.Record(ctx, recHandoff, rec)
		}
	}
	if h := findAgent(a.Helpers, c.Name); h != nil {
		var args struct{ Input string }
		if err := json.Unmarshal([]byte(c.Arguments), &args); err != nil || args.Input == "" {
			tt.results[i] = errorResult(fmt.Sprintf(`%s needs arguments {"input": "..."}`, h.Name))
			return nil
		}
		tt.children[i] = durable.StartChild(ctx, tt.rt.workflow(h.Name), Input{Message: args.Input, User: tt.st.user})
		return nil
	}
	if wt := findWorkflowTool(a.WorkflowTools, c.Name); wt != nil {
		args := json.RawMessage(c.Arguments)
		if err := wt.schema.Validate(args); err != nil {
			tt.results[i] = errorResult(err.Error())
			return nil
		}
		// A workflow tool's start and end are recorded: it has no
		// activity of its own to show in history and in the live feed.
		if err := durable.Record(ctx, recToolStarted, rec); err != nil {
			return err
		}
		started, opened := durable.Now(ctx), durable.LastStep(ctx)
		outer := ctx
		// What the tool does is traced under its span.
		tt.inline[i] = durable.Go(durable.WithinStep(ctx, opened), func(ctx durable.Context) (tools.Result, error) {
			res, err := wt.run(ctx, args)
			if errors.Is(err, durable.ErrCanceled) {
				return res, err
			}
			done := rec
			done.Arguments, done.Result, done.Since, done.Opened = "", &res, started, opened
			return res, errors.Join(err, durable.Record(outer, recToolFinished, done))
		})
		return nil
	}
	t, ok := tt.lookup(c.Name)
	if !ok {
		tt.results[i] = errorResult(fmt.Sprintf("unknown tool %q; the tools you may call are: %s", c.Name,
			strings.Join(toolNames(tt.st.request().Tools), ", ")))
		return nil
	}
	if tt.st.reg.tools[c.Name] == nil {
		// A listed tool: its arguments are checked against the
		// schema recorded with the list, here, since the live tool's
		// may have changed since.
		if err := t.Validate(json.RawMessage(c.Arguments)); err != nil {
			tt.results[i] = errorResult(err.Error())
			return nil
		}
	}
	need, err := t.NeedsApproval(json.RawMessage(c.Arguments))
	if err != nil {
		// The arguments are bad (the model is told) or the approval
		// policy panicked (the call is refused: nobody can approve it).
		tt.results[i] = errorResult(err.Error())
		return nil
	}
	if !need {
		tt.start(ctx, i)
		return nil
	}
	if d := a.Approval.Timeout; d > 0 {
		rec.Deadline = durable.Now(ctx).Add(d)
	}
	tt.approvals[i] = durable.Now(ctx)
	return durable.Record(ctx, recApprovalRequested, rec)
}

func (tt *turnTools) lookup(name string) (*tools.Tool, bool) {
	for _, set := range []*tools.Set{tt.st.reg.agent.Tools, tt.st.memoryTools(), tt.st.listedTools()} {
		if set == nil {
			continue
		}
		if t, ok := set.Lookup(name); ok {
			return t, true
		}
	}
	return nil, false
}

// memoryTools are the long-term memory tools the run offers: none if its
// agent offers none or it has no user.
func (st *state) memoryTools() *tools.Set {
	if st.namespace() == "" {
		return nil
	}
	return st.reg.memoryTools
}

// listedTools are the tools of the current agent's toolsets, as listed
// for the run; nil if it has none.
func (st *state) listedTools() *tools.Set {
	if l := st.lists[st.reg.agent.Name]; l != nil {
		return l.set
	}
	return nil
}

// start starts the activity of tool call i.
func (tt *turnTools) start(ctx durable.Context, i int) {
	c := tt.calls[i]
	tt.tools[i] = durable.StartActivity(ctx, tt.activity(c.Name), toolCall{CallID: c.ID, Arguments: c.Arguments,
		Namespace: tt.st.namespace()})
}

// finish waits for call i, if it runs, and sets its result.
func (tt *turnTools) finish(ctx durable.Context, i int) error {
	c := tt.calls[i]
	if s, ok := tt.settled[i]; ok {
		out, err := s.out, s.err
		switch {
		case errors.Is(err, durable.ErrCanceled):
			return err
		case err != nil:
			tt.results[i] = errorResult(fmt.Sprintf("the tool %s failed: %v", c.Name, err))
		case out.Fatal != "":
			return durable.NonRetryable(fmt.Errorf("%w: %s", ErrToolFatal, out.Fatal))
		default:
			tt.results[i] = out.Result
		}
	}
	if f, ok := tt.inline[i]; ok {
		res, err := f.Get(ctx)
		if errors.Is(err, durable.ErrCanceled) {
			return err
		}
		tt.results[i] = res
	}
	if f, ok := tt.children[i]; ok {
		res, err := f.Get(ctx)
		switch {
		case errors.Is(err, durable.ErrCanceled):
			return err
		case err != nil:
			tt.results[i] = errorResult(fmt.Sprintf("the agent %s failed: %v", c.Name, err))
		case res.Output != nil:
			tt.results[i] = tools.Result{Content: string(res.Output)}
		default:
			text, _ := json.Marshal(res.Text)
			tt.results[i] = tools.Result{Content: string(text)}
		}
	}
	return nil
}

func errorResult(msg string) tools.Result { return tools.Result{Content: msg, IsError: true} }

func findAgent(agents []*Agent, name string) *Agent {
	for _, a := range agents {
		if a.Name == name {
			return a
		}
	}
	return nil
}

func findWorkflowTool(ts []*WorkflowTool, name string) *WorkflowTool {
	for _, t := range ts {
		if t.Name() == name {
			return t
		}
	}
	return nil
}

func toolNames(defs []providers.ToolDefinition) []string {
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.Name
	}
	return names
}
