package agent_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

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
	var qs []agent.PendingCall
	eventually(t, "the question", func() bool {
		var err error
		qs, err = e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindQuestion})
		return err == nil && len(qs) == 1
	})
	q := qs[0]
	if q.Kind != agent.KindQuestion || q.RunID != run.ID || q.CallID != "call_0_0" || q.Tool != "ask_human" ||
		q.Question != "Which size, M or L?" || q.Arguments != "" || q.Agent != "clerk" {
		t.Fatalf("question %+v", q)
	}
	if aps, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval}); err != nil || len(aps) != 0 {
		t.Errorf("approvals %v, %v: a question is not one", aps, err)
	}
	// A question is answered, not approved; and it needs a name.
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_0", Approved: true, By: "dana"}); !errors.Is(err, agent.ErrNotPending) {
		t.Errorf("approve a question: %v, want ErrNotPending", err)
	}
	if err := e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_0", By: "", Text: "L"}); !errors.Is(err, agent.ErrNotAuthorized) {
		t.Errorf("answer with no name: %v, want ErrNotAuthorized", err)
	}
	if err := e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_1", By: "dana", Text: "L"}); !errors.Is(err, agent.ErrNotPending) {
		t.Errorf("answer a bad call: %v, want ErrNotPending", err)
	}
	if err := e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_0", By: "dana", Text: "L, please"}); err != nil {
		t.Fatal(err)
	}
	res := e.result(run)
	if res.Text != "Ordering size L." {
		t.Fatalf("result %+v", res)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(toolResult(t, res.Messages, "call_0_0")), &got); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"answer": "L, please", "answered_by": "dana"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("answer result %v, want %v", got, want)
	}
	for _, id := range []string{"call_0_1", "call_0_2"} {
		mustContain(t, "bad ask_human result", toolResult(t, res.Messages, id), `ask_human needs arguments {"question": "..."}`)
	}
	// The model was offered the tool.
	if tools := toolNamesOf(rec.request(t, 0)); !slices.Equal(tools, []string{"ask_human"}) {
		t.Errorf("tools offered %v", tools)
	}
	h := e.history(run.ID)
	answered := records(t, h, "question_answered")
	if len(answered) != 1 || answered[0]["by"] != "dana" || answered[0]["text"] != "L, please" {
		t.Errorf("answers recorded %v", answered)
	}
	if qs, _ := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindQuestion}); len(qs) != 0 {
		t.Errorf("questions after the end: %v", qs)
	}
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
	if err != nil || len(qs) != 1 || qs[0].CallID != "call_0_1" {
		t.Fatalf("questions %v, %v", qs, err)
	}
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_0", Approved: true, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(run.ID, backend.StatusWaiting)
	eventually(t, "the approved refund", func() bool { return len(s.refunded()) == 1 })
	if err := e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_1", By: "carol", Text: "broken"}); err != nil {
		t.Fatal(err)
	}
	res := e.result(run)
	if got := toolResult(t, res.Messages, "call_0_0"); got != `"refunded 500 on A1"` {
		t.Errorf("refund result %q", got)
	}
	if got := toolResult(t, res.Messages, "call_0_1"); got != `{"answer":"broken","answered_by":"carol"}` {
		t.Errorf("answer result %q", got)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	rec, model := script(answer(`{"label":"maybe","score":3}`), answer(`{"label":"spam","score":9}`))
	a := &agent.Agent{Name: "classifier", Model: model, Output: out}
	e := newEnv(t, a)
	run := e.startRun(a, "out-1", agent.Input{Message: "WIN A PRIZE"})
	res := e.result(run)
	v, err := agent.OutputAs[verdict](res)
	if err != nil {
		t.Fatal(err)
	}
	if v != (verdict{Label: "spam", Score: 9}) || res.Text != `{"label":"spam","score":9}` || res.Turns != 2 {
		t.Fatalf("output %+v, result %+v", v, res)
	}
	for turn := range 2 {
		req := rec.request(t, turn)
		if req.Output == nil || req.Output.Name != "verdict" || req.Output.Description != "the classification" {
			t.Fatalf("turn %d: output schema %+v", turn, req.Output)
		}
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(req.Output.Schema, &schema); err != nil || schema.Properties["label"] == nil || schema.Properties["score"] == nil {
			t.Fatalf("turn %d: schema %s (%v)", turn, req.Output.Schema, err)
		}
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
			if err != nil {
				t.Fatal(err)
			}
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
			if calls != c.wantCalls {
				t.Errorf("model calls %d, want %d", calls, c.wantCalls)
			}
			e.replays(a, run.ID)
		})
	}
	if _, err := agent.OutputAs[verdict](agent.RunResult{Text: "x"}); err == nil {
		t.Error("OutputAs of a result without output: no error")
	}
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
	if res.Agent != "billing" || res.Text != "Billing: your order is paid." || res.Turns != 3 {
		t.Fatalf("result %+v", res)
	}
	if n := triageRec.calls(0) + triageRec.calls(1) + triageRec.calls(2); n != 1 {
		t.Errorf("triage model called %d times, want 1", n)
	}
	treq := triageRec.request(t, 0)
	if tools := toolNamesOf(treq); !slices.Equal(tools, []string{"transfer_to_billing"}) {
		t.Errorf("triage tools %v", tools)
	}
	mustContain(t, "handoff tool description", treq.Tools[0].Description, "Handles invoices.")
	for turn := 1; turn <= 2; turn++ {
		req := billingRec.request(t, turn)
		if req.System != "You do billing." {
			t.Errorf("turn %d: system %q, want billing's", turn, req.System)
		}
		if tools := toolNamesOf(req); !slices.Equal(tools, []string{"lookup", "refund"}) && !slices.Equal(tools, []string{"refund", "lookup"}) {
			t.Errorf("turn %d: tools %v, want billing's", turn, tools)
		}
		if got := userTexts(req); !slices.Equal(got, []string{"Is my order paid?"}) {
			t.Errorf("turn %d: billing sees user messages %q", turn, got)
		}
	}
	if got := toolResult(t, res.Messages, "call_0_0"); got != `{"transferred_to":"billing"}` {
		t.Errorf("handoff result %q", got)
	}
	mustContain(t, "unknown handoff result", toolResult(t, res.Messages, "call_0_1"), `unknown tool "transfer_to_nowhere"`)
	if s.looked() != 1 {
		t.Errorf("billing's lookup ran %d times", s.looked())
	}
	h := e.history(run.ID)
	hand := records(t, h, "handoff")
	if len(hand) != 1 || hand[0]["to"] != "billing" || hand[0]["agent"] != "triage" {
		t.Errorf("handoff records %v", hand)
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
	if res.Agent != "two" || res.Text != "two" {
		t.Fatalf("result %+v", res)
	}
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
	if res.Text != "It is 42." || res.Agent != "boss" {
		t.Fatalf("result %+v", res)
	}
	if got := toolResult(t, res.Messages, "call_0_0"); got != `"The answer to life is 42."` {
		t.Errorf("helper result %q", got)
	}
	mustContain(t, "bad helper call", toolResult(t, res.Messages, "call_0_1"), `researcher needs arguments {"input": "..."}`)
	if got := toolResult(t, res.Messages, "call_0_2"); got != `{"label":"ham","score":1}` {
		t.Errorf("structured helper result %q", got)
	}
	// The helper's own request: its instructions, the input as the user
	// message, nothing of the parent's conversation.
	hreq := researcherRec.request(t, 0)
	if hreq.System != "Research." || !slices.Equal(userTexts(hreq), []string{"life"}) || len(hreq.Messages) != 1 {
		t.Errorf("helper request %+v", hreq)
	}
	req := rec.request(t, 0)
	if tools := toolNamesOf(req); !slices.Equal(tools, []string{"researcher", "judge"}) {
		t.Errorf("tools offered %v", tools)
	}
	mustContain(t, "helper description", req.Tools[0].Description, "Finds facts.")
	// The children are runs of their own, with the parent recorded.
	h := e.history(run.ID)
	var children []string
	for _, ev := range h {
		if ev.Type == backend.EventChildStarted {
			children = append(children, ev.RunID)
		}
	}
	if len(children) != 2 {
		t.Fatalf("children %v", children)
	}
	for i, id := range children {
		info, err := e.rt.Run(id).Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"researcher", "judge"}[i]
		if info.Workflow != want || info.ParentID != run.ID || info.Status != backend.StatusCompleted {
			t.Errorf("child %s: %+v", id, info)
		}
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
	if res.Text != "sorry" {
		t.Fatalf("result %+v", res)
	}
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
	if _, err := agent.OutputOf[string]("text", ""); err == nil {
		t.Error("OutputOf[string]: no error")
	}
	out, err := agent.OutputOf[verdict]("verdict", "")
	if err != nil {
		t.Fatal(err)
	}
	out.Strict = true
	rec, model := script(answer(`{"label":"ham","score":0}`))
	a := &agent.Agent{Name: "strict", Model: model, Output: out}
	e := newEnv(t, a)
	res := e.result(e.startRun(a, "strict-1", agent.Input{Message: "x"}))
	if v, err := agent.OutputAs[verdict](res); err != nil || v.Label != "ham" {
		t.Fatalf("output %+v, %v", v, err)
	}
	if req := rec.request(t, 0); req.Output == nil || !req.Output.Strict {
		t.Errorf("request output %+v, want strict", req.Output)
	}
}
