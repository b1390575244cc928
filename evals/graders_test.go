package evals_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/evals"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

func grade(t *testing.T, g evals.Grader, o *evals.Outcome) evals.Score {
	t.Helper()
	s, err := g.Grade(context.Background(), o)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, s.Value, 0.0)
	assert.LessOrEqual(t, s.Value, 1.0)
	return s
}

func TestTextGraders(t *testing.T) {
	o := &evals.Outcome{Text: "  Refunded 120 euros on A-1001. \n"}
	s := grade(t, evals.Equals("Refunded 120 euros on A-1001."), o)
	assert.True(t, s.Pass)
	assert.Equal(t, 1.0, s.Value)
	s = grade(t, evals.Equals("Refunded 100 euros."), o)
	assert.False(t, s.Pass)
	assert.Contains(t, s.Explanation, `want "Refunded 100 euros."`)

	s = grade(t, evals.Contains("120", "A-1001"), o)
	assert.True(t, s.Pass)
	s = grade(t, evals.Contains("120", "sorry", "pizza", "A-1001"), o)
	assert.False(t, s.Pass)
	assert.Equal(t, 0.5, s.Value)
	assert.Contains(t, s.Explanation, `"sorry", "pizza"`)

	re, err := evals.Regex(`\d+ euros`)
	require.NoError(t, err)
	assert.True(t, grade(t, re, o).Pass)
	re, err = evals.Regex(`^Sorry`)
	require.NoError(t, err)
	s = grade(t, re, o)
	assert.False(t, s.Pass)
	assert.Contains(t, s.Explanation, "does not match /^Sorry/")
	_, err = evals.Regex(`(unclosed`)
	assert.ErrorContains(t, err, "regex grader")
}

func TestStructuredGraders(t *testing.T) {
	schema := json.RawMessage(`{"type":"object","required":["order_id","cents"],
		"properties":{"order_id":{"type":"string"},"cents":{"type":"integer","minimum":1}}}`)
	g, err := evals.JSONSchema(schema)
	require.NoError(t, err)
	assert.True(t, grade(t, g, &evals.Outcome{Output: []byte(`{"order_id":"A-1","cents":5}`)}).Pass)
	assert.True(t, grade(t, g, &evals.Outcome{Text: `{"order_id":"A-1","cents":5}`}).Pass, "a JSON text is the structured answer")
	s := grade(t, g, &evals.Outcome{Output: []byte(`{"order_id":"A-1","cents":0}`)})
	assert.False(t, s.Pass)
	assert.Contains(t, s.Explanation, "cents")
	s = grade(t, g, &evals.Outcome{Text: "no JSON here"})
	assert.False(t, s.Pass)
	assert.Equal(t, "no structured answer", s.Explanation)
	_, err = evals.JSONSchema(json.RawMessage(`{"type": 12}`))
	assert.Error(t, err)

	f, err := evals.FieldsEqual(json.RawMessage(`{"order_id":"A-1","cents":5,"items":[{"b":2,"a":1}]}`))
	require.NoError(t, err)
	s = grade(t, f, &evals.Outcome{Output: []byte(`{ "items" : [ {"a":1, "b":2.0} ], "cents": 5, "order_id": "A-1", "extra": true }`)})
	assert.True(t, s.Pass, s.Explanation)
	s = grade(t, f, &evals.Outcome{Output: []byte(`{"order_id":"A-2","cents":5}`)})
	assert.False(t, s.Pass)
	assert.InDelta(t, 1.0/3, s.Value, 1e-9)
	assert.Contains(t, s.Explanation, `order_id = "A-2", want "A-1"`)
	assert.Contains(t, s.Explanation, "items missing")
	_, err = evals.FieldsEqual(json.RawMessage(`[1]`))
	assert.Error(t, err)
}

func TestMatcher(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	assert.True(t, evals.Matcher{Equal: raw(`{"a":1,"b":[1,2]}`)}.Match(raw(`{ "b":[1,2], "a":1.0 }`), true))
	assert.False(t, evals.Matcher{Equal: raw(`{"a":1}`)}.Match(raw(`{"a":2}`), true))
	assert.False(t, evals.Matcher{Equal: raw(`"x"`)}.Match(nil, false))
	assert.True(t, evals.Matcher{Any: true}.Match(raw(`null`), true))
	assert.False(t, evals.Matcher{Any: true}.Match(nil, false))
	assert.True(t, evals.Matcher{Regex: `^ord-[0-9a-f]{6}$`}.Match(raw(`"ord-1a2b3c"`), true))
	assert.False(t, evals.Matcher{Regex: `^ord-`}.Match(raw(`12`), true), "a regex matches strings only")
	assert.True(t, evals.Matcher{Absent: true}.Match(nil, false))
	assert.False(t, evals.Matcher{Absent: true}.Match(raw(`1`), true))
}

// calls made by a model that invents ids: each time another.
func volatileCalls(id string) []evals.Call {
	return []evals.Call{
		{ID: "c1", Tool: "lookup_order", Arguments: `{"order_id":"A-1001"}`},
		{ID: "c2", Tool: "create_ticket", Arguments: `{"ticket_id":"` + id + `","order_id":"A-1001","at":"2026-12-04T03:00:00Z"}`},
		{ID: "c3", Tool: "refund", Arguments: `{"order_id":"A-1001","cents":12000}`},
	}
}

func TestTrajectoryModes(t *testing.T) {
	eq := func(s string) evals.Matcher { return evals.Matcher{Equal: json.RawMessage(s)} }
	lookup := evals.ExpectedCall{Tool: "lookup_order", Args: map[string]evals.Matcher{"order_id": eq(`"A-1001"`)}}
	ticket := evals.ExpectedCall{Tool: "create_ticket", Args: map[string]evals.Matcher{
		"ticket_id": {Regex: `^T-[0-9]+$`}, "order_id": eq(`"A-1001"`), "at": {Any: true}, "note": {Absent: true}}}
	refund := evals.ExpectedCall{Tool: "refund", Args: map[string]evals.Matcher{"cents": eq(`12000`)}}
	made := &evals.Outcome{Calls: volatileCalls("T-4711")}
	again := &evals.Outcome{Calls: volatileCalls("T-9")}

	for _, mode := range []evals.TrajectoryMode{evals.TrajectoryExact, evals.TrajectoryInOrder, evals.TrajectoryAnyOrder, evals.TrajectorySubset} {
		g, err := evals.TrajectoryGrader(evals.Trajectory{Mode: mode, Calls: []evals.ExpectedCall{lookup, ticket, refund}})
		require.NoError(t, err)
		assert.True(t, grade(t, g, made).Pass, "%s: volatile ids matched by $regex and $any", mode)
		assert.True(t, grade(t, g, again).Pass, "%s: another id", mode)
	}

	badID := &evals.Outcome{Calls: volatileCalls("X-1")}
	g, err := evals.TrajectoryGrader(evals.Trajectory{Mode: evals.TrajectoryExact, Calls: []evals.ExpectedCall{lookup, ticket, refund}})
	require.NoError(t, err)
	s := grade(t, g, badID)
	assert.False(t, s.Pass)
	assert.InDelta(t, 2.0/4, s.Value, 1e-9, "2 matched of 3 expected and 1 unexpected")
	assert.Contains(t, s.Explanation, "missing: create_ticket(")
	assert.Contains(t, s.Explanation, `unexpected: create_ticket({"ticket_id":"X-1"`)

	// In order: another call between is fine, the wrong order is not.
	inOrder, err := evals.TrajectoryGrader(evals.Trajectory{Calls: []evals.ExpectedCall{lookup, refund}})
	require.NoError(t, err)
	assert.True(t, grade(t, inOrder, made).Pass)
	reversed := &evals.Outcome{Calls: []evals.Call{made.Calls[2], made.Calls[0]}}
	s = grade(t, inOrder, reversed)
	assert.False(t, s.Pass)
	assert.Equal(t, 0.5, s.Value)
	assert.Contains(t, s.Explanation, "missing: ")

	// Any order: the order does not matter, an extra call does.
	anyOrder, err := evals.TrajectoryGrader(evals.Trajectory{Mode: evals.TrajectoryAnyOrder, Calls: []evals.ExpectedCall{refund, lookup}})
	require.NoError(t, err)
	assert.True(t, grade(t, anyOrder, reversed).Pass)
	s = grade(t, anyOrder, made)
	assert.False(t, s.Pass)
	assert.InDelta(t, 2.0/3, s.Value, 1e-9)
	assert.Contains(t, s.Explanation, "unexpected: create_ticket")

	// Subset: extras allowed, a missing call is not.
	subset, err := evals.TrajectoryGrader(evals.Trajectory{Mode: evals.TrajectorySubset, Calls: []evals.ExpectedCall{refund, lookup}})
	require.NoError(t, err)
	assert.True(t, grade(t, subset, made).Pass)
	s = grade(t, subset, &evals.Outcome{Calls: made.Calls[:1]})
	assert.False(t, s.Pass)
	assert.Equal(t, 0.5, s.Value)
	assert.Contains(t, s.Explanation, "missing: refund(cents: 12000)")

	_, err = evals.TrajectoryGrader(evals.Trajectory{Mode: "sideways"})
	assert.ErrorContains(t, err, `unknown mode "sideways"`)
	_, err = evals.TrajectoryGrader(evals.Trajectory{Calls: []evals.ExpectedCall{{Tool: "x", Args: map[string]evals.Matcher{"a": {Regex: "("}}}}})
	assert.ErrorContains(t, err, "argument a")
}

func TestBudgetGrader(t *testing.T) {
	o := &evals.Outcome{Usage: providers.Usage{InputTokens: 1000, OutputTokens: 200}, Turns: 3, Latency: 40 * time.Millisecond}
	prices := evals.Prices{Input: 2, Output: 10} // per million tokens
	within := evals.BudgetGrader(evals.Budget{Tokens: 1500, Cost: 0.01, Turns: 3, Latency: evals.Duration(time.Second)}, prices)
	s := grade(t, within, o)
	assert.True(t, s.Pass, s.Explanation)
	over := evals.BudgetGrader(evals.Budget{Tokens: 1000, Cost: 0.001, Turns: 5, Latency: evals.Duration(10 * time.Millisecond)}, prices)
	s = grade(t, over, o)
	assert.False(t, s.Pass)
	assert.Equal(t, 0.25, s.Value)
	assert.Contains(t, s.Explanation, "1200 tokens, budget 1000")
	assert.Contains(t, s.Explanation, "cost 0.004, budget 0.001")
	assert.Contains(t, s.Explanation, "latency 40ms, budget 10ms")
	_, err := evals.BudgetGrader(evals.Budget{Cost: 1}, evals.Prices{}).Grade(context.Background(), o)
	assert.ErrorContains(t, err, "needs prices")
}

func TestExpectGraders(t *testing.T) {
	gs, err := evals.Expect{Text: "a", Contains: []string{"a"}, Regex: "a", Output: json.RawMessage(`{"a":1}`),
		Schema: json.RawMessage(`{"type":"object"}`), Trajectory: &evals.Trajectory{}, Budget: &evals.Budget{Turns: 1}}.Graders()
	require.NoError(t, err)
	var names []string
	for _, g := range gs {
		names = append(names, g.Name())
	}
	assert.Equal(t, []string{"equals", "contains", "regex", "fields", "json_schema", "trajectory", "budget"}, names)
	_, err = evals.Expect{Regex: "("}.Graders()
	assert.Error(t, err)
}

func judgeSays(contents ...string) *scripted.Model {
	var rs []providers.Response
	for _, c := range contents {
		rs = append(rs, providers.Response{Message: providers.Message{Content: c}})
	}
	return scripted.New(rs...)
}

func TestJudge(t *testing.T) {
	o := &evals.Outcome{Case: &evals.Case{Message: "My pizza came cold"}, Text: "Sorry! I refunded you."}
	var seen []providers.Request
	valid := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		seen = append(seen, req)
		return providers.Response{Message: providers.Message{Content: "```json\n{\"score\":0.8,\"label\":\"polite\",\"rationale\":\"Apologises and acts.\"}\n```"}}, nil
	})
	g := evals.Judge(valid, "Polite and helpful.", 0)
	s := grade(t, g, o)
	assert.Equal(t, evals.Score{Value: 0.8, Pass: true, Label: "polite", Explanation: "Apologises and acts."}, s)
	require.Len(t, seen, 1)
	require.NotNil(t, seen[0].Settings.Temperature)
	assert.Equal(t, 0.0, *seen[0].Settings.Temperature, "deterministic")
	assert.NotNil(t, seen[0].Settings.Seed)
	assert.Contains(t, seen[0].Messages[0].Content, "Polite and helpful.")
	assert.Contains(t, seen[0].Messages[0].Content, "My pizza came cold")
	grade(t, g, o)
	assert.Len(t, seen, 1, "the same request is judged once")
	assert.False(t, grade(t, evals.Judge(valid, "Polite and helpful.", 0.9), o).Pass, "below the threshold")

	retried := evals.Judge(judgeSays("I'd say 0.9", `{"score":0.9,"label":"good","rationale":"fine"}`), "r", 0)
	s = grade(t, retried, o)
	assert.Equal(t, 0.9, s.Value)
	assert.Equal(t, "fine", s.Explanation)

	twice := evals.Judge(judgeSays("great", `{"score": 7}`), "r", 0)
	_, err := twice.Grade(context.Background(), o)
	require.ErrorIs(t, err, evals.ErrJudge)
	assert.ErrorContains(t, err, "outside [0,1]")
}

func TestFunc(t *testing.T) {
	g := evals.Func("short", func(_ context.Context, o *evals.Outcome) (evals.Score, error) {
		return evals.Score{Value: 1, Pass: len(o.Text) < 10}, nil
	})
	assert.Equal(t, "short", g.Name())
	assert.True(t, grade(t, g, &evals.Outcome{Text: "ok"}).Pass)
}
