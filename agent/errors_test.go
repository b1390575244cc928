package agent_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	if res.Text != "A1 is paid." || res.Turns != 3 {
		t.Fatalf("result %+v", res)
	}
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
	if got := toolResult(t, res.Messages, "call_1_0"); got != `"order A1 is paid"` {
		t.Errorf("corrected call result %q", got)
	}
	// The model read the errors in its next request.
	req := rec.request(t, 1)
	if n := len(req.Messages); n != 6 {
		t.Errorf("turn 1 request has %d messages, want 6", n)
	}
	if s.looked() != 1 || len(s.refunded()) != 0 {
		t.Errorf("lookups %d, refunds %v: a bad call reached a tool", s.looked(), s.refunded())
	}
	// The bad calls that reached the tool activity are error results in
	// the live feed.
	errs := 0
	for _, ev := range follow(t, e, run.ID, "") {
		if ev.Type == agent.LiveToolFinished && ev.Result != nil && ev.Result.IsError {
			errs++
		}
	}
	if errs != 2 {
		t.Errorf("%d error results in the feed, want 2 (the lookups with bad arguments)", errs)
	}
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
	if res.Text != "It failed." {
		t.Fatalf("result %+v", res)
	}
	if attempts.Load() != 3 {
		t.Errorf("%d attempts, want the default 3", attempts.Load())
	}
	got := toolResult(t, res.Messages, "call_0_0")
	mustContain(t, "failed tool result", got, "the tool boom failed", "kaboom")
	if strings.Contains(got, "goroutine") || strings.Contains(got, ".go:") {
		t.Errorf("the model was shown a stack trace: %q", got)
	}
	h := e.history(run.ID)
	if n := countEvents(h, backend.EventActivityAttemptFailed); n != 2 {
		t.Errorf("%d failed attempts in history, want 2 (then the failure)", n)
	}
	var final *backend.Failure
	for _, ev := range h {
		if ev.Type == backend.EventActivityFailed {
			final = ev.Failure
		}
	}
	if final == nil || !strings.Contains(final.Stack, "goroutine") {
		t.Errorf("history keeps no stack of the panic: %+v", final)
	}
	failed := ofType(follow(t, e, run.ID, ""), agent.LiveToolFailed)
	if len(failed) != 3 || failed[2].Attempt != 3 || !strings.Contains(failed[0].Error, "kaboom") {
		t.Errorf("tool_failed events %+v", failed)
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
	if got := toolResult(t, res.Messages, "call_0_0"); got != `"ok A1"` || flakyAttempts.Load() != 2 {
		t.Errorf("flaky result %q after %d attempts", got, flakyAttempts.Load())
	}
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
	if calls.Load() != 1 || rec.calls(1) != 0 {
		t.Errorf("tool called %d times, model asked again %d times", calls.Load(), rec.calls(1))
	}
	finished := ofType(follow(t, e, run.ID, ""), agent.LiveToolFinished)
	if len(finished) != 1 || !strings.Contains(finished[0].Error, "card revoked") {
		t.Errorf("tool_finished %+v", finished)
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
			if c.wantCalls > 0 && calls != c.wantCalls {
				t.Errorf("model calls %d, want %d", calls, c.wantCalls)
			}
			if c.wantCalls == 0 && (calls < 2 || calls >= agent.DefaultMaxTurns) {
				t.Errorf("model calls %d: the budget should stop the run after a few", calls)
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
				if res := e.result(run); res.Text != "hello" {
					t.Fatalf("result %+v", res)
				}
			} else {
				mustContain(t, "failure", e.failure(run), "model call", c.wantFail)
			}
			if calls.Load() != int64(c.wantCalls) {
				t.Errorf("model calls %d, want %d", calls.Load(), c.wantCalls)
			}
			h := e.history(run.ID)
			if n := countEvents(h, backend.EventActivityAttemptFailed); n != min(c.failures, c.wantCalls-1) {
				t.Errorf("%d failed attempts in history, want %d", n, min(c.failures, c.wantCalls-1))
			}
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
			err := rt.Register(c.agent)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("register: %v, want an error about %q", err, c.want)
			}
		})
	}
	rt := agent.NewRuntime(newMemoryStore(), agent.Options{Logger: quietLogger()})
	if err := rt.Register(ok, ok); err != nil {
		t.Errorf("register twice: %v", err)
	}
	if err := rt.Register(&agent.Agent{Name: "ok", Model: model}); err == nil {
		t.Error("register another agent of the same name: no error")
	}
	ctx := ctxT(t)
	if _, err := rt.Start(ctx, ok, "x", agent.Input{}); err == nil {
		t.Error("start with no message: no error")
	}
	if _, err := rt.Start(ctx, ok, "x", agent.Input{Message: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Start(ctx, ok, "x", agent.Input{Message: "a"}); err != nil {
		t.Errorf("start the same run again: %v", err)
	}
	if _, err := rt.Start(ctx, ok, "x", agent.Input{Message: "b"}); !errors.Is(err, durable.ErrRunExists) {
		t.Errorf("start another run with the same id: %v, want ErrRunExists", err)
	}
}
