package agent_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// TestModelMistakesAreFedBack: an unknown tool, malformed arguments and
// arguments that break the schema are told to the model, which corrects
// itself; the run goes on.
func TestModelMistakesAreFedBack(t *testing.T) {
	var s shop
	rec, model := script(
		toolTurn(
			call("teleport", `{}`),
			call("lookup", `{"order":`),
			call("lookup", `{"order":42}`),
			call("refund", `{"order":"A1","amount":"lots"}`),
		),
		toolTurn(call("lookup", `{"order":"A1"}`)),
		answer("A1 is paid."),
	)
	a := &agent.Agent{Name: "clumsy", Model: model, Tools: s.tools(t)}
	e := newEnv(t, a)
	run := e.startRun(a, "mistakes-1", agent.Input{Message: "check A1"})
	res := e.result(run)
	assert.Equal(t, "A1 is paid.", res.Text)
	assert.Equal(t, 3, res.Turns)
	cases := []struct {
		call string
		want []string
	}{
		{"call_0_0", []string{`unknown tool "teleport"`, "lookup", "refund"}},
		{"call_0_1", []string{`invalid arguments for tool "lookup"`}},
		{"call_0_2", []string{`invalid arguments for tool "lookup"`, "/order"}},
		{"call_0_3", []string{`invalid arguments for tool "refund"`, "/amount"}},
	}
	for _, c := range cases {
		mustContain(t, "result of "+c.call, toolResult(t, res.Messages, c.call), c.want...)
	}
	assert.Equal(t, `"order A1 is paid"`, toolResult(t, res.Messages, "call_1_0"), "corrected call result")
	// The model read the errors in its next request.
	req := rec.request(t, 1)
	assert.Len(t, req.Messages, 6, "turn 1 request")
	assert.Equal(t, 1, s.looked(), "lookups: a bad call reached a tool")
	assert.Empty(t, s.refunded(), "refunds: a bad call reached a tool")
	// The bad calls that reached the tool activity are error results in
	// the live feed.
	errs := 0
	for _, ev := range follow(t, e, run.ID, "") {
		if ev.Type == agent.LiveToolFinished && ev.Result != nil && ev.Result.IsError {
			errs++
		}
	}
	assert.Equal(t, 2, errs, "error results in the feed: want the lookups with bad arguments")
	e.replays(a, run.ID)
}

// TestToolPanicIsRetriedThenReported: a panicking tool is retried; after
// its attempts run out the model is told it failed, without the stack,
// and the run goes on.
func TestToolPanicIsRetriedThenReported(t *testing.T) {
	var attempts atomic.Int64
	boom := tools.MustNew("boom", "explodes", func(ctx context.Context, in orderArgs) (string, error) {
		attempts.Add(1)
		panic("kaboom")
	}, fastRetry)
	_, model := script(toolTurn(call("boom", `{"order":"A1"}`)), answer("It failed."))
	a := &agent.Agent{Name: "bomber", Model: model, Tools: mustSet(t, boom)}
	e := newEnv(t, a)
	run := e.startRun(a, "boom-1", agent.Input{Message: "go"})
	res := e.result(run)
	assert.Equal(t, "It failed.", res.Text)
	assert.Equal(t, int64(3), attempts.Load(), "attempts: want the default 3")
	got := toolResult(t, res.Messages, "call_0_0")
	mustContain(t, "failed tool result", got, "the tool boom failed", "kaboom")
	assert.NotContains(t, got, "goroutine", "the model was shown a stack trace")
	assert.NotContains(t, got, ".go:", "the model was shown a stack trace")
	h := e.history(run.ID)
	assert.Equal(t, 2, countEvents(h, backend.EventActivityAttemptFailed), "failed attempts in history: want 2, then the failure")
	var final *backend.Failure
	for _, ev := range h {
		if ev.Type == backend.EventActivityFailed {
			final = ev.Failure
		}
	}
	if assert.NotNil(t, final, "history keeps no failure of the panic") {
		assert.Contains(t, final.Stack, "goroutine", "history keeps no stack of the panic")
	}
	failed := ofType(follow(t, e, run.ID, ""), agent.LiveToolFailed)
	if assert.Len(t, failed, 3, "tool_failed events") {
		assert.Equal(t, 3, failed[2].Attempt, "tool_failed events %+v", failed)
		assert.Contains(t, failed[0].Error, "kaboom", "tool_failed events %+v", failed)
	}
	e.replays(a, run.ID)
}

// TestToolErrorsAndRetries: a plain error is the model's to read; a
// Retryable error is retried, and succeeds.
func TestToolErrorsAndRetries(t *testing.T) {
	var flakyAttempts atomic.Int64
	flaky := tools.MustNew("flaky", "fails once", func(ctx context.Context, in orderArgs) (string, error) {
		if flakyAttempts.Add(1) == 1 {
			return "", tools.Retryable(errors.New("503"))
		}
		return "ok " + in.Order, nil
	}, fastRetry)
	picky := tools.MustNew("picky", "refuses", func(ctx context.Context, in orderArgs) (string, error) {
		return "", errors.New("no such order")
	})
	_, model := script(toolTurn(call("flaky", `{"order":"A1"}`), call("picky", `{"order":"B2"}`)), answer("done"))
	a := &agent.Agent{Name: "mixed", Model: model, Tools: mustSet(t, flaky, picky)}
	e := newEnv(t, a)
	res := e.result(e.startRun(a, "mixed-1", agent.Input{Message: "go"}))
	assert.Equal(t, `"ok A1"`, toolResult(t, res.Messages, "call_0_0"), "flaky result")
	assert.Equal(t, int64(2), flakyAttempts.Load(), "flaky attempts")
	mustContain(t, "picky result", toolResult(t, res.Messages, "call_0_1"), "no such order")
	e.replays(a, "mixed-1")
}

// TestFatalToolErrorFailsTheRun: tools.Fatal stops the run.
func TestFatalToolErrorFailsTheRun(t *testing.T) {
	var calls atomic.Int64
	charge := tools.MustNew("charge", "charge a card", func(ctx context.Context, in orderArgs) (string, error) {
		calls.Add(1)
		return "", tools.Fatal(errors.New("card revoked"))
	})
	rec, model := script(toolTurn(call("charge", `{"order":"A1"}`)), answer("never"))
	a := &agent.Agent{Name: "charger", Model: model, Tools: mustSet(t, charge)}
	e := newEnv(t, a)
	run := e.startRun(a, "fatal-1", agent.Input{Message: "go"})
	msg := e.failure(run)
	mustContain(t, "failure", msg, "fatal tool error", "card revoked")
	assert.Equal(t, int64(1), calls.Load(), "tool calls")
	assert.Zero(t, rec.calls(1), "the model was asked again")
	finished := ofType(follow(t, e, run.ID, ""), agent.LiveToolFinished)
	if assert.Len(t, finished, 1, "tool_finished") {
		assert.Contains(t, finished[0].Error, "card revoked", "tool_finished")
	}
	e.replays(a, run.ID)
}

// TestLimits: the turn limit and the token budget fail the run.
func TestLimits(t *testing.T) {
	var s shop
	forever := func(int, providers.Request) (providers.Response, error) {
		return toolTurn(call("lookup", `{"order":"A1"}`)), nil
	}
	cases := []struct {
		name      string
		agent     func(m providers.Model) *agent.Agent
		want      []string
		wantCalls int
	}{
		{"max turns", func(m providers.Model) *agent.Agent {
			return &agent.Agent{Name: "looper", Model: m, Tools: s.tools(t), MaxTurns: 3}
		}, []string{"turn limit reached", "3 turns"}, 3},
		{"default max turns", func(m providers.Model) *agent.Agent {
			return &agent.Agent{Name: "looper", Model: m, Tools: s.tools(t)}
		}, []string{"turn limit reached"}, agent.DefaultMaxTurns},
		{"token budget", func(m providers.Model) *agent.Agent {
			return &agent.Agent{Name: "spender", Model: m, Tools: s.tools(t), TokenBudget: 150}
		}, []string{"token budget exhausted", "budget 150"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, model := newRecorder(forever)
			a := c.agent(model)
			e := newEnv(t, a)
			run := e.startRun(a, "limit-1", agent.Input{Message: "go"})
			mustContain(t, "failure", e.failure(run), c.want...)
			calls := 0
			for turn := range 20 {
				calls += rec.calls(turn)
			}
			if c.wantCalls > 0 {
				assert.Equal(t, c.wantCalls, calls, "model calls")
			} else {
				assert.GreaterOrEqual(t, calls, 2, "model calls: the budget should stop the run after a few")
				assert.Less(t, calls, agent.DefaultMaxTurns, "model calls: the budget should stop the run after a few")
			}
			e.replays(a, run.ID)
		})
	}
}

// TestModelErrors: errors the provider says are transient are retried
// (after the wait it asked for); the others fail the run at once.
func TestModelErrors(t *testing.T) {
	cases := []struct {
		name      string
		kind      error
		failures  int // how many calls fail before one succeeds
		wantCalls int
		wantFail  string // "" if the run completes
	}{
		{"rate limited", providers.ErrRateLimited, 2, 3, ""},
		{"unavailable", providers.ErrUnavailable, 1, 2, ""},
		{"invalid request", providers.ErrInvalidRequest, 1, 1, "invalid request"},
		{"auth", providers.ErrAuth, 1, 1, "not authorized"},
		{"always rate limited", providers.ErrRateLimited, 100, 6, "rate limited"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int64
			_, model := newRecorder(func(int, providers.Request) (providers.Response, error) {
				if calls.Add(1) <= int64(c.failures) {
					return providers.Response{}, providers.Classify(&providers.Error{Kind: c.kind, Provider: "test",
						RetryAfter: 10 * time.Millisecond})
				}
				return answer("hello"), nil
			})
			a := &agent.Agent{Name: "caller", Model: model, ModelOptions: fastModel}
			e := newEnv(t, a)
			run := e.startRun(a, "model-1", agent.Input{Message: "hi"})
			if c.wantFail == "" {
				assert.Equal(t, "hello", e.result(run).Text, "result")
			} else {
				mustContain(t, "failure", e.failure(run), "model call", c.wantFail)
			}
			assert.Equal(t, int64(c.wantCalls), calls.Load(), "model calls")
			h := e.history(run.ID)
			assert.Equal(t, min(c.failures, c.wantCalls-1), countEvents(h, backend.EventActivityAttemptFailed), "failed attempts in history")
			e.replays(a, run.ID)
		})
	}
}

// TestStartAndRegisterErrors: bad agents and inputs are refused with a
// clear error.
func TestStartAndRegisterErrors(t *testing.T) {
	_, model := script(answer("hi"))
	ok := &agent.Agent{Name: "ok", Model: model}
	var s shop
	bad := []struct {
		name  string
		agent *agent.Agent
		want  string
	}{
		{"nil", nil, "nil agent"},
		{"bad name", &agent.Agent{Name: "a b", Model: model}, "name"},
		{"no model", &agent.Agent{Name: "nomodel"}, "no model"},
		{"helper named as a tool", &agent.Agent{Name: "dup", Model: model, Tools: s.tools(t),
			Helpers: []*agent.Agent{{Name: "lookup", Model: model}}}, `"lookup"`},
		{"ask_human tool clash", &agent.Agent{Name: "dup2", Model: model, AskHuman: true,
			Tools: mustSet(t, tools.MustNew("ask_human", "x", func(context.Context, orderArgs) (string, error) { return "", nil }))}, "ask_human"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			rt := agent.NewRuntime(newMemoryStore(), agent.Options{Logger: quietLogger()})
			assert.ErrorContains(t, rt.Register(c.agent), c.want, "register")
		})
	}
	rt := agent.NewRuntime(newMemoryStore(), agent.Options{Logger: quietLogger()})
	assert.NoError(t, rt.Register(ok, ok), "register twice")
	assert.Error(t, rt.Register(&agent.Agent{Name: "ok", Model: model}), "register another agent of the same name")
	ctx := ctxT(t)
	_, err := rt.Start(ctx, ok, "x", agent.Input{})
	assert.Error(t, err, "start with no message")
	_, err = rt.Start(ctx, ok, "x", agent.Input{Message: "a"})
	require.NoError(t, err)
	_, err = rt.Start(ctx, ok, "x", agent.Input{Message: "a"})
	assert.NoError(t, err, "start the same run again")
	_, err = rt.Start(ctx, ok, "x", agent.Input{Message: "b"})
	assert.ErrorIs(t, err, durable.ErrRunExists, "start another run with the same id")
}
