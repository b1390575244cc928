package evals_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/evals"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

type refundArgs struct {
	OrderID string `json:"order_id"`
	Cents   int    `json:"cents"`
}

// world is the outside world of the support agent: it counts lookups and
// refunds, by idempotency key when the refund tool honours it.
type world struct {
	mu      sync.Mutex
	lookups int
	refunds []string
	keys    map[string]bool
}

func (s *world) tools(t testing.TB, idempotent bool) *tools.Set {
	lookup := tools.MustNew("lookup_order", "Find an order by its id.", func(ctx context.Context, a struct {
		OrderID string `json:"order_id"`
	}) (string, error) {
		s.mu.Lock()
		s.lookups++
		s.mu.Unlock()
		return "order " + a.OrderID + ": 1 margherita, 120 euros, delivered cold", nil
	}, tools.HonorsIdempotencyKey()) // it changes nothing: running it again is harmless
	opts := []tools.Option{tools.RequireApprovalIf(func(a refundArgs) bool { return a.Cents > 50_00 })}
	if idempotent {
		opts = append(opts, tools.HonorsIdempotencyKey())
	}
	refund := tools.MustNew("refund", "Refund an order, in cents.", func(ctx context.Context, a refundArgs) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		key, _ := tools.IdempotencyKey(ctx)
		if idempotent && s.keys[key] {
			return "already refunded", nil
		}
		if s.keys == nil {
			s.keys = map[string]bool{}
		}
		s.keys[key] = true
		s.refunds = append(s.refunds, fmt.Sprintf("%s:%d", a.OrderID, a.Cents))
		return fmt.Sprintf("refunded %d cents on %s", a.Cents, a.OrderID), nil
	}, opts...)
	set, err := tools.NewSet(lookup, refund)
	require.NoError(t, err)
	return set
}

func (s *world) counts() (lookups, refunds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups, len(s.refunds)
}

func toolTurn(name, args string) providers.Response {
	return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{Name: name, Arguments: args}}}}
}

func answer(text string) providers.Response {
	return providers.Response{Message: providers.Message{Content: text}}
}

// supportAgent looks an order up, refunds cents, and answers.
func supportAgent(t testing.TB, s *world, cents int, idempotent bool) *agent.Agent {
	return &agent.Agent{
		Name:  "support",
		Model: scripted.New(toolTurn("lookup_order", `{"order_id":"A-1001"}`), toolTurn("refund", fmt.Sprintf(`{"order_id":"A-1001","cents":%d}`, cents)), answer("Refunded. Sorry about the pizza!")),
		Tools: s.tools(t, idempotent),
	}
}

func evalCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRunnerGradesARealRun(t *testing.T) {
	var s world
	r := &evals.Runner{Agent: supportAgent(t, &s, 2000, true)}
	eq := func(v string) evals.Matcher { return evals.Matcher{Equal: json.RawMessage(v)} }
	rep, err := r.Run(evalCtx(t), []evals.Case{{
		Name:    "refund",
		Message: "My pizza came cold; refund 20 euros.",
		Expect: evals.Expect{Contains: []string{"Refunded"}, Trajectory: &evals.Trajectory{Mode: evals.TrajectoryExact, Calls: []evals.ExpectedCall{
			{Tool: "lookup_order", Args: map[string]evals.Matcher{"order_id": eq(`"A-1001"`)}},
			{Tool: "refund", Args: map[string]evals.Matcher{"cents": eq(`2000`), "order_id": {Regex: `^A-\d+$`}}},
		}}, Budget: &evals.Budget{Turns: 3}},
	}})
	require.NoError(t, err)
	require.Len(t, rep.Cases, 1)
	c := rep.Cases[0]
	assert.Equal(t, evals.StatusPass, c.Status, "%+v", c)
	require.Len(t, c.Trials, 1)
	tr := c.Trials[0]
	assert.Equal(t, "Refunded. Sorry about the pizza!", tr.Text)
	require.Len(t, tr.Calls, 2)
	assert.Equal(t, evals.Call{ID: "call_1_0", Tool: "refund", Arguments: `{"order_id":"A-1001","cents":2000}`,
		Result: `"refunded 2000 cents on A-1001"`}, tr.Calls[1])
	assert.Equal(t, 3, tr.Turns)
	assert.Positive(t, tr.Tokens)
	assert.Equal(t, "support", rep.Agent)
	_, refunds := s.counts()
	assert.Equal(t, 1, refunds)
}

func TestRunnerOutcome(t *testing.T) {
	var s world
	var got *evals.Outcome
	r := &evals.Runner{Agent: supportAgent(t, &s, 2000, true), Graders: []evals.Grader{
		evals.Func("capture", func(_ context.Context, o *evals.Outcome) (evals.Score, error) {
			got = o
			return evals.Score{Value: 1, Pass: true}, nil
		})}}
	_, err := r.Run(evalCtx(t), []evals.Case{{Name: "outcome", Message: "refund", User: "u-1"}})
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "scripted-2", got.ResponseID)
	assert.NotEmpty(t, got.History)
	assert.Equal(t, 3, got.Turns)
	assert.Positive(t, got.Latency)
	assert.Regexp(t, `^eval-[0-9a-f]{8}-outcome-1$`, got.RunID)
	assert.Len(t, got.Messages, 6)
	assert.NoError(t, got.Err)
}

// concurrencyModel answers after a fixed latency and records the most
// calls it had at once.
type concurrencyModel struct {
	now, most atomic.Int32
	calls     atomic.Int32
}

func (m *concurrencyModel) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	n := m.now.Add(1)
	defer m.now.Add(-1)
	for {
		most := m.most.Load()
		if n <= most || m.most.CompareAndSwap(most, n) {
			break
		}
	}
	m.calls.Add(1)
	select {
	case <-time.After(20 * time.Millisecond):
	case <-ctx.Done():
		return providers.Response{}, ctx.Err()
	}
	return providers.Response{Message: providers.Message{Role: providers.RoleAssistant, Content: "ok"}}, nil
}

func TestRunnerConcurrencyAndTrials(t *testing.T) {
	m := &concurrencyModel{}
	r := &evals.Runner{Agent: &agent.Agent{Name: "echo", Model: m}, Concurrency: 4, Trials: 2}
	var cases []evals.Case
	for i := range 8 {
		cases = append(cases, evals.Case{Name: fmt.Sprintf("case-%d", i), Message: "hi", Expect: evals.Expect{Text: "ok"}})
	}
	rep, err := r.Run(evalCtx(t), cases)
	require.NoError(t, err)
	require.Len(t, rep.Cases, 8)
	for i, c := range rep.Cases {
		assert.Equal(t, fmt.Sprintf("case-%d", i), c.Name, "the dataset's order")
		assert.Equal(t, evals.StatusPass, c.Status)
		assert.Len(t, c.Trials, 2)
		assert.Equal(t, 1.0, c.PassRate)
	}
	assert.EqualValues(t, 16, m.calls.Load(), "8 cases x 2 trials")
	assert.Greater(t, m.most.Load(), int32(1), "cases overlap")
	assert.LessOrEqual(t, m.most.Load(), int32(4), "at most Concurrency at once")

	m2 := &concurrencyModel{}
	r = &evals.Runner{Agent: &agent.Agent{Name: "echo", Model: m2}, Concurrency: 1}
	_, err = r.Run(evalCtx(t), cases)
	require.NoError(t, err)
	assert.EqualValues(t, 1, m2.most.Load(), "one at a time")
}

func TestRunnerFlaky(t *testing.T) {
	var n atomic.Int32
	model := scripted.Func(func(context.Context, providers.Request) (providers.Response, error) {
		if n.Add(1)%2 == 1 {
			return answer("Paris"), nil
		}
		return answer("Lyon"), nil
	})
	r := &evals.Runner{Agent: &agent.Agent{Name: "geo", Model: model}, Trials: 4, Concurrency: 1}
	rep, err := r.Run(evalCtx(t), []evals.Case{
		{Name: "capital", Message: "Capital of France?", Expect: evals.Expect{Text: "Paris"}},
		{Name: "never", Message: "Capital of Italy?", Expect: evals.Expect{Text: "Rome"}, Trials: 2},
	})
	require.NoError(t, err)
	flaky := rep.Cases[0]
	assert.Equal(t, evals.StatusFlaky, flaky.Status)
	assert.Equal(t, 0.5, flaky.PassRate)
	require.Len(t, flaky.Trials, 4)
	assert.True(t, flaky.Trials[0].Pass)
	assert.False(t, flaky.Trials[1].Pass)
	assert.Contains(t, flaky.Trials[1].Grades[0].Explanation, `answer "Lyon", want "Paris"`)
	assert.Equal(t, evals.StatusFail, rep.Cases[1].Status)
	assert.Len(t, rep.Cases[1].Trials, 2, "the case's own trials")
}

func TestRunnerFixtures(t *testing.T) {
	var s world
	r := &evals.Runner{Agent: supportAgent(t, &s, 2000, true)}
	rep, err := r.Run(evalCtx(t), []evals.Case{{
		Name: "fixture", Message: "refund",
		Fixtures: []evals.Fixture{
			{Tool: "lookup_order", Args: map[string]evals.Matcher{"order_id": {Equal: json.RawMessage(`"B-2"`)}}, Result: `"not this one"`},
			{Tool: "lookup_order", Args: map[string]evals.Matcher{"order_id": {Regex: "^A-"}}, Result: `"order A-1001: fixture"`},
		},
	}})
	require.NoError(t, err)
	calls := rep.Cases[0].Trials[0].Calls
	require.Len(t, calls, 2)
	assert.Equal(t, `"order A-1001: fixture"`, calls[0].Result)
	lookups, refunds := s.counts()
	assert.Equal(t, 0, lookups, "the fixture stood in for the tool")
	assert.Equal(t, 1, refunds, "a call no fixture names runs the tool")
}

func TestRunnerApprovalsAndAnswers(t *testing.T) {
	var s world
	a := supportAgent(t, &s, 12000, true) // over 50 euros: waits for approval
	r := &evals.Runner{Agent: a, Concurrency: 2}
	eq := func(v string) evals.Matcher { return evals.Matcher{Equal: json.RawMessage(v)} }
	rep, err := r.Run(evalCtx(t), []evals.Case{
		{Name: "approved", Message: "refund", Approvals: []evals.Approval{
			{Tool: "refund", Args: map[string]evals.Matcher{"cents": eq(`100`)}, Approved: false, Reason: "small"},
			{Tool: "refund", Args: map[string]evals.Matcher{"cents": eq(`12000`)}, Approved: true, By: "alice", Reason: "receipt checked"},
		}},
		{Name: "unscripted", Message: "refund"},
	})
	require.NoError(t, err)
	ok := rep.Cases[0].Trials[0]
	assert.Equal(t, `"refunded 12000 cents on A-1001"`, ok.Calls[1].Result)
	assert.Empty(t, ok.Notes)
	no := rep.Cases[1].Trials[0]
	assert.Contains(t, no.Calls[1].Result, "no scripted decision")
	require.Len(t, no.Notes, 1)
	assert.Contains(t, no.Notes[0], "no rule decided it")
	_, refunds := s.counts()
	assert.Equal(t, 1, refunds, "only the approved refund ran")

	asker := &agent.Agent{Name: "asker", AskHuman: true, Model: scripted.New(
		toolTurn("ask_human", `{"question":"Which order?"}`), toolTurn("ask_human", `{"question":"Why?"}`),
		toolTurn("ask_human", `{"question":"Anything else?"}`), answer("done"))}
	rep, err = (&evals.Runner{Agent: asker}).Run(evalCtx(t), []evals.Case{{Name: "answers", Message: "help", Answers: []string{"A-1001", "cold"}}})
	require.NoError(t, err)
	calls := rep.Cases[0].Trials[0].Calls
	require.Len(t, calls, 3)
	assert.Contains(t, calls[0].Result, "A-1001")
	assert.Contains(t, calls[1].Result, "cold")
	assert.Contains(t, calls[2].Result, "I don't know")
}

func TestRunnerConversation(t *testing.T) {
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		last := req.Messages[len(req.Messages)-1]
		return answer("you said " + last.Content), nil
	})
	r := &evals.Runner{Agent: &agent.Agent{Name: "chat", Model: model}}
	rep, err := r.Run(evalCtx(t), []evals.Case{{Name: "chat", Turns: []string{"hello", "bye"}, Expect: evals.Expect{Text: "you said bye"}}})
	require.NoError(t, err)
	c := rep.Cases[0]
	assert.Equal(t, evals.StatusPass, c.Status, "%+v", c)
	assert.Equal(t, 2, c.Trials[0].Turns)
}

func TestRunnerJudgeSpecCached(t *testing.T) {
	var judged atomic.Int32
	judge := scripted.Func(func(context.Context, providers.Request) (providers.Response, error) {
		judged.Add(1)
		return answer(`{"score":0.9,"label":"kind","rationale":"It apologises."}`), nil
	})
	var mu sync.Mutex
	var stores []backend.Store
	r := &evals.Runner{Agent: &agent.Agent{Name: "kind", Model: scripted.New(answer("Sorry!"))}, Judge: judge, Trials: 3,
		Store: func() backend.Store {
			mu.Lock()
			defer mu.Unlock()
			s := inmem.New()
			stores = append(stores, s)
			return s
		}}
	cases := []evals.Case{{Name: "judged", Message: "hi", Grade: []evals.GraderSpec{{Kind: "judge", Rubric: "Is it kind?"}}}}
	rep, err := r.Run(evalCtx(t), cases)
	require.NoError(t, err)

	// The first trial's store journals the judge's call as a run of its own.
	client := durable.NewClient(stores[0], durable.ClientOptions{})
	runs, err := client.ListRuns(evalCtx(t), backend.RunFilter{Workflow: "cairn.evals.judge"})
	require.NoError(t, err)
	require.Len(t, runs, 1)
	assert.Equal(t, backend.StatusCompleted, runs[0].Status)
	history, err := client.History(evalCtx(t), runs[0].ID)
	require.NoError(t, err)
	journaled := false
	for _, e := range history {
		if e.Type == backend.EventActivityCompleted && e.Name == "cairn.evals.judge" {
			journaled = strings.Contains(string(e.Payload), "It apologises.")
		}
	}
	assert.True(t, journaled, "the verdict is in the judge run's history")
	g := rep.Cases[0].Trials[0].Grades[0]
	assert.Equal(t, "judge", g.Grader)
	assert.Equal(t, "It apologises.", g.Explanation)
	assert.Equal(t, "kind", g.Label)
	assert.Equal(t, evals.StatusPass, rep.Cases[0].Status)
	assert.EqualValues(t, 1, judged.Load(), "three trials with the same output: one judge call")
	_, err = r.Run(evalCtx(t), cases)
	require.NoError(t, err)
	assert.EqualValues(t, 1, judged.Load(), "a rerun reads the cache")
	assert.Equal(t, 1, r.JudgeCalls())
}

func TestRunnerGraderErrorIsCaseError(t *testing.T) {
	r := &evals.Runner{Agent: &agent.Agent{Name: "kind", Model: scripted.New(answer("Sorry!"))}, Judge: judgeSays("no", "still no"),
		Named: map[string]evals.Grader{"short": evals.Contains("Sorry")}}
	rep, err := r.Run(evalCtx(t), []evals.Case{{Name: "judged", Message: "hi",
		Grade: []evals.GraderSpec{{Kind: "short"}, {Kind: "judge", Rubric: "Is it kind?"}}}})
	require.NoError(t, err)
	c := rep.Cases[0]
	assert.Equal(t, evals.StatusError, c.Status)
	assert.Contains(t, c.Error, "grader judge")
	assert.Contains(t, c.Error, "invalid reply twice")
	assert.True(t, c.Trials[0].Grades[0].Pass, "the named grader graded")
}

func TestRunnerRejectsBadCases(t *testing.T) {
	r := &evals.Runner{Agent: &agent.Agent{Name: "a", Model: scripted.New(answer("x"))}}
	_, err := r.Run(evalCtx(t), []evals.Case{
		{Name: "ok", Message: "hi"},
		{Name: "ok", Message: "again"},
		{Name: "empty"},
		{Name: "unknown", Message: "hi", Grade: []evals.GraderSpec{{Kind: "vibes"}}},
		{Name: "no-judge", Message: "hi", Grade: []evals.GraderSpec{{Kind: "judge", Rubric: "r"}}},
		{Name: "bad-regex", Message: "hi", Expect: evals.Expect{Regex: "("}},
		{Message: "nameless"},
	})
	require.Error(t, err)
	for _, want := range []string{`case "ok": the name of case 1 too`, `case "empty": no input`, `case "unknown": unknown grader kind "vibes"`,
		`case "no-judge": grader "judge": the runner has no judge model`, `case "bad-regex": regex grader`, `case 7: no name`} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestRunnerTags(t *testing.T) {
	r := &evals.Runner{Agent: &agent.Agent{Name: "a", Model: scripted.New(answer("x"))}, Tags: []string{"smoke"}}
	var progress strings.Builder
	r.Progress = &progress
	rep, err := r.Run(evalCtx(t), []evals.Case{{Name: "one", Message: "hi", Tags: []string{"smoke"}}, {Name: "two", Message: "hi", Tags: []string{"slow"}}})
	require.NoError(t, err)
	require.Len(t, rep.Cases, 1)
	assert.Equal(t, "one", rep.Cases[0].Name)
	assert.Equal(t, "[1/1] one: pass (pass rate 100%)\n", progress.String())
}

func TestCrashInjection(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		t.Run(fmt.Sprintf("idempotent=%v", idempotent), func(t *testing.T) {
			var s world
			r := &evals.Runner{Agent: supportAgent(t, &s, 2000, idempotent)}
			rep, err := r.Run(evalCtx(t), []evals.Case{{Name: "crash", Message: "refund", Crash: true}})
			require.NoError(t, err)
			c := rep.Cases[0]
			require.Greater(t, len(c.Trials), 3, "a trial per journal boundary")
			twice := 0
			for _, tr := range c.Trials[1:] {
				assert.Positive(t, tr.Crash)
				assert.Empty(t, tr.Error)
				for _, g := range tr.Grades {
					if g.Grader == "crash" && strings.Contains(g.Explanation, "side effect of refund happened twice") {
						twice++
					}
				}
			}
			t.Logf("%d trials, %d found the refund twice", len(c.Trials), twice)
			if idempotent {
				assert.Equal(t, evals.StatusPass, c.Status, "%+v", c)
				assert.Zero(t, twice)
			} else {
				assert.Equal(t, evals.StatusFail, c.Status)
				assert.Positive(t, twice, "the boundary after the refund ran and before it was journaled")
			}
		})
	}
}

func TestRunAsSubtests(t *testing.T) {
	var s world
	r := &evals.Runner{Agent: supportAgent(t, &s, 2000, true)}
	evals.Run(t, r, []evals.Case{
		{Name: "refund", Message: "refund", Expect: evals.Expect{Contains: []string{"Refunded"}}},
		{Name: "apology", Message: "refund", Expect: evals.Expect{Regex: "(?i)sorry"}},
	})
}

// countingModel counts the calls of the model it wraps.
type countingModel struct {
	providers.Model
	calls atomic.Int32
}

func (m *countingModel) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	m.calls.Add(1)
	return m.Model.Generate(ctx, req)
}

func TestRunnerReplaysRecordedRunFromStep(t *testing.T) {
	var s world
	model := &countingModel{Model: supportAgent(t, &s, 2000, true).Model}
	a := &agent.Agent{Name: "support", Model: model, Tools: s.tools(t, true)}
	store := inmem.New()
	rt := agent.NewRuntime(store, agent.Options{Logger: quiet()})
	require.NoError(t, rt.Register(a))
	ctx := evalCtx(t)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = rt.NewWorker(durable.WorkerOptions{}).Run(wctx) }()
	run, err := rt.Start(ctx, a, "ticket-1", agent.Input{Message: "refund"})
	require.NoError(t, err)
	_, err = run.Result(ctx)
	require.NoError(t, err)
	history, err := rt.Client().History(ctx, "ticket-1")
	require.NoError(t, err)
	recorded, err := evals.CaseFromHistory("ticket-1", history, evals.RecordOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 3, model.calls.Load())
	_, refunds := s.counts()
	require.Equal(t, 1, refunds)

	// From the refund's model call on: the lookup and the first model
	// call come from the journal.
	recorded.Replay.From = 3
	r := &evals.Runner{Agent: a}
	rep, err := r.Run(ctx, []evals.Case{recorded})
	require.NoError(t, err)
	c := rep.Cases[0]
	assert.Equal(t, evals.StatusPass, c.Status, "%+v", c)
	assert.EqualValues(t, 5, model.calls.Load(), "two model calls made again, not three")
	lookups, refunds := s.counts()
	assert.Equal(t, 1, lookups, "the lookup came from the journal")
	assert.Equal(t, 2, refunds)
}

// TestRunnerCache: a runner with a Cache reruns an unchanged agent with
// no model call and the same answers.
func TestRunnerCache(t *testing.T) {
	cache, err := evals.OpenCache(t.TempDir())
	require.NoError(t, err)
	var calls atomic.Int32
	model := scripted.Func(func(context.Context, providers.Request) (providers.Response, error) {
		return answer(fmt.Sprintf("answer %d", calls.Add(1))), nil
	})
	r := &evals.Runner{Agent: &agent.Agent{Name: "cached", Model: model}, Cache: cache}
	cases := []evals.Case{{Name: "a", Message: "one"}, {Name: "b", Message: "two"}}
	first, err := r.Run(evalCtx(t), cases)
	require.NoError(t, err)
	require.Equal(t, int32(2), calls.Load())
	again, err := r.Run(evalCtx(t), cases)
	require.NoError(t, err)
	assert.Equal(t, int32(2), calls.Load(), "the rerun calls no model")
	for i := range cases {
		assert.Equal(t, first.Cases[i].Trials[0].Text, again.Cases[i].Trials[0].Text)
	}
	assert.Equal(t, 2, cache.Stats().Hits)
}
