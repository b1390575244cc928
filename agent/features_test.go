package agent_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
)

// TestAskHuman: the model asks a person; the question is listed, answered
// by someone the authorizer accepts, and the answer is the tool's result.
// Bad ask_human arguments are fed back to the model.
func TestAskHuman(t *testing.T) {
	rec, model := script(
		toolTurn(call("ask_human", `{"question":"Which size, M or L?"}`), call("ask_human", `{"q":1}`), call("ask_human", `not json`)),
		answer("Ordering size L."),
	)
	a := &agent.Agent{Name: "clerk", Model: model, AskHuman: true}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "ask-1", agent.Input{Message: "Order me a shirt."})
	// A question is not an approval: the run waits as waiting.
	e.waitStatus(run.ID, backend.StatusWaiting)
	q := e.onePending(agent.PendingFilter{Kind: agent.KindQuestion})
	assert.Equal(t, agent.KindQuestion, q.Kind, "question %+v", q)
	assert.Equal(t, run.ID, q.RunID, "question %+v", q)
	assert.Equal(t, "call_0_0", q.CallID, "question %+v", q)
	assert.Equal(t, "ask_human", q.Tool, "question %+v", q)
	assert.Equal(t, "Which size, M or L?", q.Question, "question %+v", q)
	assert.Empty(t, q.Arguments, "question %+v", q)
	assert.Equal(t, "clerk", q.Agent, "question %+v", q)
	aps, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
	assert.NoError(t, err)
	assert.Empty(t, aps, "approvals: a question is not one")
	// A question is answered, not approved; and it needs a name.
	err = e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_0", Approved: true, By: "dana"})
	assert.ErrorIs(t, err, agent.ErrNotPending, "approve a question")
	err = e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_0", By: "", Text: "L"})
	assert.ErrorIs(t, err, agent.ErrNotAuthorized, "answer with no name")
	err = e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_1", By: "dana", Text: "L"})
	assert.ErrorIs(t, err, agent.ErrNotPending, "answer a bad call")
	require.NoError(t, e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_0", By: "dana", Text: "L, please"}))
	res := e.result(run)
	assert.Equal(t, "Ordering size L.", res.Text)
	assert.JSONEq(t, `{"answer":"L, please","answered_by":"dana"}`, toolResult(t, res.Messages, "call_0_0"), "answer result")
	for _, id := range []string{"call_0_1", "call_0_2"} {
		mustContain(t, "bad ask_human result", toolResult(t, res.Messages, id), `ask_human needs arguments {"question": "..."}`)
	}
	// The model was offered the tool.
	assert.Equal(t, []string{"ask_human"}, toolNamesOf(rec.request(t, 0)), "tools offered")
	h := e.history(run.ID)
	answered := records(t, h, "question_answered")
	if assert.Len(t, answered, 1, "answers recorded") {
		assert.Equal(t, "dana", answered[0]["by"], "answers recorded")
		assert.Equal(t, "L, please", answered[0]["text"], "answers recorded")
	}
	qs, _ := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindQuestion})
	assert.Empty(t, qs, "questions after the end")
	e.replays(a, run.ID)
}

// TestAskHumanWhileApproving: a question and an approval in the same turn
// wait independently; the run is awaiting_approval until the approval is
// decided, then waiting for the answer.
func TestAskHumanWhileApproving(t *testing.T) {
	var s shop
	_, model := script(
		toolTurn(call("refund", `{"order":"A1","amount":500}`), call("ask_human", `{"question":"Why?"}`)),
		answer("ok"),
	)
	a := &agent.Agent{Name: "asker", Model: model, Tools: s.tools(t), AskHuman: true}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "mixed-1", agent.Input{Message: "refund"})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	qs, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindQuestion})
	require.NoError(t, err)
	require.Len(t, qs, 1, "questions")
	assert.Equal(t, "call_0_1", qs[0].CallID, "questions")
	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_0", Approved: true, By: "alice"}))
	e.waitStatus(run.ID, backend.StatusWaiting)
	eventually(t, "the approved refund", func() bool { return len(s.refunded()) == 1 })
	require.NoError(t, e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_1", By: "carol", Text: "broken"}))
	res := e.result(run)
	assert.Equal(t, `"refunded 500 on A1"`, toolResult(t, res.Messages, "call_0_0"), "refund result")
	assert.Equal(t, `{"answer":"broken","answered_by":"carol"}`, toolResult(t, res.Messages, "call_0_1"), "answer result")
	e.replays(a, run.ID)
}

// verdict is a structured answer.
type verdict struct {
	Label string `json:"label" jsonschema:"enum=spam,enum=ham"`
	Score int    `json:"score" jsonschema:"minimum=0,maximum=10"`
}

// TestStructuredOutput: an invalid answer is fed back with what is wrong,
// the corrected one is decoded, and every request carries the schema.
func TestStructuredOutput(t *testing.T) {
	out, err := agent.OutputOf[verdict]("verdict", "the classification")
	require.NoError(t, err)
	rec, model := script(answer(`{"label":"maybe","score":3}`), answer(`{"label":"spam","score":9}`))
	a := &agent.Agent{Name: "classifier", Model: model, Output: out}
	e := newEnv(t, a)
	run := e.startRun(a, "out-1", agent.Input{Message: "WIN A PRIZE"})
	res := e.result(run)
	v, err := agent.OutputAs[verdict](res)
	require.NoError(t, err)
	assert.Equal(t, verdict{Label: "spam", Score: 9}, v, "output")
	assert.Equal(t, `{"label":"spam","score":9}`, res.Text)
	assert.Equal(t, 2, res.Turns)
	for turn := range 2 {
		req := rec.request(t, turn)
		require.NotNil(t, req.Output, "turn %d: output schema", turn)
		assert.Equal(t, "verdict", req.Output.Name, "turn %d: output schema", turn)
		assert.Equal(t, "the classification", req.Output.Description, "turn %d: output schema", turn)
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		require.NoError(t, json.Unmarshal(req.Output.Schema, &schema), "turn %d: schema %s", turn, req.Output.Schema)
		assert.Contains(t, schema.Properties, "label", "turn %d: schema %s", turn, req.Output.Schema)
		assert.Contains(t, schema.Properties, "score", "turn %d: schema %s", turn, req.Output.Schema)
	}
	// The correction names the problem.
	correction := lastUser(rec.request(t, 1))
	mustContain(t, "correction", correction, "not valid JSON for the required schema", "label")
	e.replays(a, run.ID)
}

// TestStructuredOutputExhausted: answers that stay invalid fail the run
// once the corrections allowed are used up.
func TestStructuredOutputExhausted(t *testing.T) {
	cases := []struct {
		name        string
		corrections int
		wantCalls   int
	}{
		{"default", 0, 1 + agent.DefaultMaxCorrections},
		{"one", 1, 2},
		{"none", -1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := agent.OutputOf[verdict]("verdict", "")
			require.NoError(t, err)
			out.MaxCorrections = c.corrections
			var calls int
			rec, model := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
				return answer("I think it is spam"), nil
			})
			a := &agent.Agent{Name: "stubborn", Model: model, Output: out}
			e := newEnv(t, a)
			run := e.startRun(a, "bad-out", agent.Input{Message: "classify"})
			msg := e.failure(run)
			mustContain(t, "failure", msg, "invalid structured output")
			for turn := range 10 {
				calls += rec.calls(turn)
			}
			assert.Equal(t, c.wantCalls, calls, "model calls")
			e.replays(a, run.ID)
		})
	}
	_, err := agent.OutputAs[verdict](agent.RunResult{Text: "x"})
	assert.Error(t, err, "OutputAs of a result without output")
}

// TestStructuredOutputRefusal: a model that refuses the schema fails the
// run with ErrInvalidOutput and its reason.
func TestStructuredOutputRefusal(t *testing.T) {
	out, _ := agent.OutputOf[verdict]("verdict", "")
	_, model := script(providers.Response{Refusal: "I cannot classify that"})
	a := &agent.Agent{Name: "refuser", Model: model, Output: out}
	e := newEnv(t, a)
	msg := e.failure(e.startRun(a, "refuse-1", agent.Input{Message: "classify"}))
	mustContain(t, "failure", msg, "invalid structured output", "I cannot classify that")
}

// TestHandoff: the model hands the conversation to another agent, whose
// instructions, model and tools answer the next turn.
func TestHandoff(t *testing.T) {
	billingRec, billingModel := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		if turn == 1 {
			return toolTurn(call("lookup", `{"order":"A1"}`)), nil
		}
		return answer("Billing: your order is paid."), nil
	})
	var s shop
	billing := &agent.Agent{Name: "billing", Description: "Handles invoices.", Instructions: "You do billing.",
		Model: billingModel, Tools: s.tools(t)}
	triageRec, triageModel := script(
		toolTurn(call("transfer_to_billing", `{}`), call("transfer_to_nowhere", `{}`)),
	)
	triage := &agent.Agent{Name: "triage", Instructions: "You route.", Model: triageModel, Handoffs: []*agent.Agent{billing}}
	e := newEnv(t, triage)
	run := e.startRun(triage, "handoff-1", agent.Input{Message: "Is my order paid?"})
	res := e.result(run)
	assert.Equal(t, "billing", res.Agent)
	assert.Equal(t, "Billing: your order is paid.", res.Text)
	assert.Equal(t, 3, res.Turns)
	assert.Equal(t, 1, triageRec.calls(0)+triageRec.calls(1)+triageRec.calls(2), "triage model calls")
	treq := triageRec.request(t, 0)
	require.Equal(t, []string{"transfer_to_billing"}, toolNamesOf(treq), "triage tools")
	mustContain(t, "handoff tool description", treq.Tools[0].Description, "Handles invoices.")
	for turn := 1; turn <= 2; turn++ {
		req := billingRec.request(t, turn)
		assert.Equal(t, "You do billing.", req.System, "turn %d: system, want billing's", turn)
		assert.ElementsMatch(t, []string{"lookup", "refund"}, toolNamesOf(req), "turn %d: tools, want billing's", turn)
		assert.Equal(t, []string{"Is my order paid?"}, userTexts(req), "turn %d: user messages billing sees", turn)
	}
	assert.Equal(t, `{"transferred_to":"billing"}`, toolResult(t, res.Messages, "call_0_0"), "handoff result")
	mustContain(t, "unknown handoff result", toolResult(t, res.Messages, "call_0_1"), `unknown tool "transfer_to_nowhere"`)
	assert.Equal(t, 1, s.looked(), "billing's lookup runs")
	h := e.history(run.ID)
	hand := records(t, h, "handoff")
	if assert.Len(t, hand, 1, "handoff records") {
		assert.Equal(t, "billing", hand[0]["to"], "handoff records")
		assert.Equal(t, "triage", hand[0]["agent"], "handoff records")
	}
	e.replays(triage, run.ID)
}

// TestHandoffOnlyOnce: two handoffs in one turn: the first wins, the
// second is told it was ignored.
func TestHandoffOnlyOnce(t *testing.T) {
	answers := func(text string) providers.Model {
		_, m := newRecorder(func(int, providers.Request) (providers.Response, error) { return answer(text), nil })
		return m
	}
	one := &agent.Agent{Name: "one", Model: answers("one")}
	two := &agent.Agent{Name: "two", Model: answers("two")}
	_, model := script(toolTurn(call("transfer_to_two", `{}`), call("transfer_to_one", `{}`)))
	front := &agent.Agent{Name: "front", Model: model, Handoffs: []*agent.Agent{one, two}}
	e := newEnv(t, front)
	res := e.result(e.startRun(front, "twice", agent.Input{Message: "hi"}))
	assert.Equal(t, "two", res.Agent)
	assert.Equal(t, "two", res.Text)
	mustContain(t, "second handoff", toolResult(t, res.Messages, "call_0_1"), "ignored", "already handed to two")
	e.replays(front, "twice")
}

// TestHelpers: the model calls another agent as a tool; it runs as a
// child run whose answer is the tool result.
func TestHelpers(t *testing.T) {
	researcherRec, researcherModel := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		return answer("The answer to " + lastUser(req) + " is 42."), nil
	})
	researcher := &agent.Agent{Name: "researcher", Description: "Finds facts.", Instructions: "Research.", Model: researcherModel}
	out, _ := agent.OutputOf[verdict]("verdict", "")
	_, judgeModel := script(answer(`{"label":"ham","score":1}`))
	judge := &agent.Agent{Name: "judge", Model: judgeModel, Output: out}
	rec, model := script(
		toolTurn(call("researcher", `{"input":"life"}`), call("researcher", `{"input":""}`), call("judge", `{"input":"hello"}`)),
		answer("It is 42."),
	)
	boss := &agent.Agent{Name: "boss", Model: model, Helpers: []*agent.Agent{researcher, judge}}
	e := newEnv(t, boss)
	ctx := ctxT(t)
	run := e.startRun(boss, "boss-1", agent.Input{Message: "What is the answer?"})
	res := e.result(run)
	assert.Equal(t, "It is 42.", res.Text)
	assert.Equal(t, "boss", res.Agent)
	assert.Equal(t, `"The answer to life is 42."`, toolResult(t, res.Messages, "call_0_0"), "helper result")
	mustContain(t, "bad helper call", toolResult(t, res.Messages, "call_0_1"), `researcher needs arguments {"input": "..."}`)
	assert.Equal(t, `{"label":"ham","score":1}`, toolResult(t, res.Messages, "call_0_2"), "structured helper result")
	// The helper's own request: its instructions, the input as the user
	// message, nothing of the parent's conversation.
	hreq := researcherRec.request(t, 0)
	assert.Equal(t, "Research.", hreq.System, "helper request")
	assert.Equal(t, []string{"life"}, userTexts(hreq), "helper request")
	assert.Len(t, hreq.Messages, 1, "helper request")
	req := rec.request(t, 0)
	require.Equal(t, []string{"researcher", "judge"}, toolNamesOf(req), "tools offered")
	mustContain(t, "helper description", req.Tools[0].Description, "Finds facts.")
	// The children are runs of their own, with the parent recorded.
	h := e.history(run.ID)
	var children []string
	for _, ev := range h {
		if ev.Type == backend.EventChildStarted {
			children = append(children, ev.RunID)
		}
	}
	require.Len(t, children, 2, "children")
	for i, id := range children {
		info, err := e.rt.Run(id).Describe(ctx)
		require.NoError(t, err)
		want := []string{"researcher", "judge"}[i]
		assert.Equal(t, want, info.Workflow, "child %s", id)
		assert.Equal(t, run.ID, info.ParentID, "child %s", id)
		assert.Equal(t, backend.StatusCompleted, info.Status, "child %s", id)
		e.replays(map[string]*agent.Agent{"researcher": researcher, "judge": judge}[want], id)
	}
	e.replays(boss, run.ID)
}

// TestHelperFails: a helper run that fails is reported to the model as a
// failed tool; the parent goes on.
func TestHelperFails(t *testing.T) {
	_, broken := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		return providers.Response{}, providers.Classify(&providers.Error{Kind: providers.ErrAuth, Provider: "test"})
	})
	helper := &agent.Agent{Name: "helper", Model: broken}
	_, model := script(toolTurn(call("helper", `{"input":"x"}`)), answer("sorry"))
	a := &agent.Agent{Name: "parent", Model: model, Helpers: []*agent.Agent{helper}}
	e := newEnv(t, a)
	res := e.result(e.startRun(a, "p-1", agent.Input{Message: "go"}))
	assert.Equal(t, "sorry", res.Text)
	mustContain(t, "failed helper result", toolResult(t, res.Messages, "call_0_0"), "the agent helper failed", "not authorized")
	e.replays(a, "p-1")
}

func toolNamesOf(req providers.Request) []string {
	var names []string
	for _, d := range req.Tools {
		names = append(names, d.Name)
	}
	return names
}

// TestOutputOfOptions: Strict reaches the request; a type that is not an
// object cannot be an output.
func TestOutputOfOptions(t *testing.T) {
	_, err := agent.OutputOf[string]("text", "")
	assert.Error(t, err, "OutputOf[string]")
	out, err := agent.OutputOf[verdict]("verdict", "")
	require.NoError(t, err)
	out.Strict = true
	rec, model := script(answer(`{"label":"ham","score":0}`))
	a := &agent.Agent{Name: "strict", Model: model, Output: out}
	e := newEnv(t, a)
	res := e.result(e.startRun(a, "strict-1", agent.Input{Message: "x"}))
	v, err := agent.OutputAs[verdict](res)
	require.NoError(t, err, "output")
	assert.Equal(t, "ham", v.Label, "output")
	req := rec.request(t, 0)
	require.NotNil(t, req.Output, "request output")
	assert.True(t, req.Output.Strict, "request output %+v, want strict", req.Output)
}
