package evals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// trialRun is what a trial did: its outcome, what it noted, and (in a
// crash case) the tool executions and its own checks.
type trialRun struct {
	outcome *Outcome
	notes   []string
	// executions counts the real executions of each tool call, by tool
	// and idempotency key.
	executions map[execKey]int
	commits    int
	crashAt    int
	// trace is the run's trace, for its evaluation events.
	trace backend.Trace
	// grades are the graders' grades; gradeErrs, the errors of those
	// that could not grade; checks, the trial's own (crash trials).
	grades    []Grade
	gradeErrs []string
	checks    []Grade
}

type execKey struct{ tool, key string }

var unsafeID = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// runID names a trial's run: the case, the trial, and a token of the
// Run call, so that a rerun on a store that keeps runs makes new ones.
// A crash trial's run has its clean trial's id (see crashPlan).
func runID(token string, c *Case, trial int) string {
	return fmt.Sprintf("eval-%s-%s-%d", token, strings.Trim(unsafeID.ReplaceAllString(c.Name, "-"), "-"), trial)
}

// trial runs one trial of c and grades it with graders while its worker
// still runs (a judge's call is a run of its own on the trial's store).
// With a crash plan, the first worker is stopped before the commit the
// plan names, and another takes over.
func (r *Runner) trial(parent context.Context, c *Case, n int, plan *crashPlan, graders []Grader) *trialRun {
	tr := &trialRun{executions: map[execKey]int{}}
	o := &Outcome{Case: c, Trial: n}
	tr.outcome = o
	timeout := time.Duration(c.Timeout)
	if timeout <= 0 {
		timeout = cmpOr(r.Timeout, DefaultTimeout)
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()

	var store backend.Store
	if r.Store != nil {
		store = r.Store()
	} else {
		store = inmem.New()
	}
	var hook *hookStore
	if c.Crash {
		hook = newHookStore(store, plan)
		store = hook.store()
	}
	crashAt := 0
	if plan != nil {
		crashAt = plan.cutBefore
	}
	o.RunID = runID(tokenOf(ctx), c, n)
	if plan != nil {
		o.RunID = plan.runID
	}
	tr.crashAt = crashAt

	var mu sync.Mutex
	a, err := r.trialAgent(c, func(k execKey) {
		mu.Lock()
		tr.executions[k]++
		mu.Unlock()
	})
	if err != nil {
		o.Err = err
		return tr
	}
	rt := agent.NewRuntime(store, agent.Options{Logger: r.logger()})
	if err := rt.Register(a); err != nil {
		o.Err = err
		return tr
	}
	workers := newWorkers(rt, o.RunID, plan != nil)
	journal := newJudgeJournal(rt.Client(), o.RunID, r.judgeCache())
	workers.also = append(workers.also, journal.workflow)
	if hook != nil {
		hook.onCut = workers.swap
	}
	workers.start(ctx)
	defer workers.stop()

	start := time.Now()
	run, turns, err := r.begin(ctx, rt, a, c, o.RunID)
	if err != nil {
		o.Err = err
		return tr
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan []string, 1)
	go func() { watched <- r.decide(watchCtx, rt, o.RunID, c) }()

	var res agent.RunResult
	switch {
	case len(c.Turns) > 0:
		res, err = converse(ctx, rt, run, turns, o)
	case c.Replay != nil:
		// A seeded run whose code diverged from the recorded steps
		// parks: that is its error, not a wait for ever.
		if _, err = AwaitSeeded(ctx, rt.Client(), o.RunID); err == nil {
			res, err = run.Result(ctx)
		}
	default:
		res, err = run.Result(ctx)
	}
	o.Latency = time.Since(start)
	stopWatch()
	tr.notes = append(tr.notes, <-watched...)
	if err != nil {
		o.Err = err
	}
	o.Text, o.Output, o.Messages, o.Usage, o.Turns = res.Text, res.Output, res.Messages, res.Usage, res.Turns
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer hcancel()
	if h, herr := rt.Client().History(hctx, o.RunID); herr == nil {
		o.History = h
	}
	if info, ierr := rt.Client().Describe(hctx, o.RunID); ierr == nil {
		tr.trace = info.Trace
	}
	o.Calls = callsOf(o.Messages, o.History)
	o.ResponseID = lastResponseID(o.History)
	if hook != nil {
		tr.commits = hook.count()
		if plan != nil && !hook.cut() {
			tr.notes = append(tr.notes, fmt.Sprintf("the run made fewer than %d commits: its worker was not stopped", plan.cutBefore))
		}
	}
	tr.grades, tr.gradeErrs = r.grade(parent, o, graders, journal)
	return tr
}

type runTokenKey struct{}

// tokenOf is the token of the Run call ctx belongs to.
func tokenOf(ctx context.Context) string {
	tok, _ := ctx.Value(runTokenKey{}).(string)
	return tok
}

func cmpOr[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

// begin starts a trial's run: a new run of the case's input, or, for a
// case with a Replay, a run seeded with the recorded history up to
// Replay.From (see SeedCase). It returns the turns of a conversation still
// to send.
func (r *Runner) begin(ctx context.Context, rt *agent.Runtime, a *agent.Agent, c *Case, runID string) (*durable.Run[agent.RunResult], []string, error) {
	if c.Replay != nil {
		seeded, err := SeedCase(ctx, rt.Client(), c, runID)
		if err != nil {
			return nil, nil, fmt.Errorf("seed: %w", err)
		}
		return rt.Run(runID), c.Turns[min(seeded.Turns, len(c.Turns)):], nil
	}
	in := agent.Input{Message: c.Message, History: c.History, User: c.User, Conversation: len(c.Turns) > 0}
	run, err := rt.Start(ctx, a, runID, in)
	if err != nil {
		return nil, nil, fmt.Errorf("start: %w", err)
	}
	return run, c.Turns, nil
}

// converse sends each turn of a conversation, waiting for its reply, then
// ends it and returns its result.
func converse(ctx context.Context, rt *agent.Runtime, run *durable.Run[agent.RunResult], turns []string, o *Outcome) (agent.RunResult, error) {
	for i, t := range turns {
		id, err := rt.Send(ctx, run.ID, t)
		if err != nil {
			return agent.RunResult{}, fmt.Errorf("turn %d: send: %w", i+1, err)
		}
		reply, err := rt.Reply(ctx, run.ID, id)
		if err != nil {
			return agent.RunResult{}, fmt.Errorf("turn %d: reply: %w", i+1, err)
		}
		o.Replies = append(o.Replies, reply)
	}
	if err := rt.End(ctx, run.ID); err != nil {
		return agent.RunResult{}, fmt.Errorf("end: %w", err)
	}
	return run.Result(ctx)
}

// decide answers the run's pending calls as the case scripts them, until
// ctx ends; it returns its notes (calls it had no decision for).
func (r *Runner) decide(ctx context.Context, rt *agent.Runtime, runID string, c *Case) []string {
	var notes []string
	answered := 0
	done := map[string]bool{}
	for ctx.Err() == nil {
		info, err := rt.Client().Describe(ctx, runID)
		if err != nil {
			if ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			break
		}
		if info.Status.Terminal() {
			break
		}
		pending, err := rt.Pending(ctx, agent.PendingFilter{RunID: runID})
		if err == nil {
			for _, p := range pending {
				key := fmt.Sprintf("%s/%d/%s", p.Kind, p.Turn, p.CallID)
				if done[key] {
					continue
				}
				switch p.Kind {
				case agent.KindApproval:
					d, note := decision(c.Approvals, p)
					if note != "" {
						notes = append(notes, note)
					}
					err = rt.Decide(ctx, runID, d)
				case agent.KindQuestion:
					text := "I don't know"
					if answered < len(c.Answers) {
						text = c.Answers[answered]
					}
					answered++
					err = rt.Answer(ctx, runID, agent.Answer{CallID: p.CallID, By: "evals", Text: text})
				}
				if err == nil || errors.Is(err, agent.ErrNotPending) {
					done[key] = true
				}
			}
		}
		if err := rt.Client().WaitChange(ctx, info); err != nil {
			break
		}
	}
	return notes
}

// decision is the decision the first rule that matches p makes, or a
// rejection noted as unscripted.
func decision(rules []Approval, p agent.PendingCall) (agent.Decision, string) {
	for _, rule := range rules {
		if (rule.Tool == "" || rule.Tool == p.Tool) && matchArgs(rule.Args, p.Arguments) {
			return agent.Decision{CallID: p.CallID, Approved: rule.Approved, By: cmpOr(rule.By, "evals"), Reason: rule.Reason}, ""
		}
	}
	return agent.Decision{CallID: p.CallID, Approved: false, By: "evals", Reason: "no scripted decision"},
		fmt.Sprintf("call %s of %s(%s) waited for approval and no rule decided it: rejected (no scripted decision)", p.CallID, p.Tool, p.Arguments)
}

// trialAgent copies the runner's agent with its tools wrapped: a call a
// fixture of c matches gets the fixture's result; other calls run the
// tool, counted by count.
func (r *Runner) trialAgent(c *Case, count func(execKey)) (*agent.Agent, error) {
	a := *r.Agent
	if r.Cache != nil {
		a.Model = CachedModel(a.Model, r.Cache)
	}
	if a.Tools == nil {
		if len(c.Fixtures) > 0 {
			return nil, fmt.Errorf("case %q: fixtures for an agent without tools", c.Name)
		}
		return &a, nil
	}
	list := a.Tools.List()
	for _, f := range c.Fixtures {
		if _, ok := a.Tools.Lookup(f.Tool); !ok {
			return nil, fmt.Errorf("case %q: a fixture for %q, which the agent does not have", c.Name, f.Tool)
		}
	}
	for i, t := range list {
		var fixtures []Fixture
		for _, f := range c.Fixtures {
			if f.Tool == t.Name() {
				fixtures = append(fixtures, f)
			}
		}
		name := t.Name()
		list[i] = t.Intercept(func(ctx context.Context, args json.RawMessage, next func(context.Context) (tools.Result, error)) (tools.Result, error) {
			for _, f := range fixtures {
				if matchArgs(f.Args, string(args)) {
					return tools.Result{Content: f.Result, IsError: f.IsError}, nil
				}
			}
			key, _ := tools.IdempotencyKey(ctx)
			count(execKey{name, key})
			return next(ctx)
		})
	}
	set, err := tools.NewSet(list...)
	if name := a.Tools.Name(); name != "" {
		set, err = tools.NewNamedSet(name, list...)
	}
	if err != nil {
		return nil, err
	}
	a.Tools = set
	return &a, nil
}

// callsOf lists the tool calls of a conversation, with the results the
// model read; whether a result was an error comes from the history.
func callsOf(msgs []providers.Message, history []backend.Event) []Call {
	isError := map[string]bool{}
	var fromHistory []Call
	for _, e := range history {
		if e.Type != backend.EventActivityCompleted {
			continue
		}
		switch {
		case strings.HasPrefix(e.Name, "tool:"):
			var out struct {
				CallID string       `json:"call_id"`
				Result tools.Result `json:"result"`
			}
			if json.Unmarshal(e.Payload, &out) == nil && out.Result.IsError {
				isError[out.CallID] = true
			}
		case strings.HasPrefix(e.Name, "model:"):
			var resp providers.Response
			if json.Unmarshal(e.Payload, &resp) == nil {
				for _, tc := range resp.Message.ToolCalls {
					fromHistory = append(fromHistory, Call{ID: tc.ID, Tool: tc.Name, Arguments: tc.Arguments})
				}
			}
		}
	}
	if len(msgs) == 0 {
		// The run failed: its calls are those its model asked for.
		for i := range fromHistory {
			fromHistory[i].IsError = isError[fromHistory[i].ID]
		}
		return fromHistory
	}
	var calls []Call
	index := map[string]int{}
	for _, m := range msgs {
		switch m.Role {
		case providers.RoleAssistant:
			for _, tc := range m.ToolCalls {
				index[tc.ID] = len(calls)
				calls = append(calls, Call{ID: tc.ID, Tool: tc.Name, Arguments: tc.Arguments, IsError: isError[tc.ID]})
			}
		case providers.RoleTool:
			if i, ok := index[m.ToolCallID]; ok {
				calls[i].Result = m.Content
			}
		}
	}
	return calls
}

// lastResponseID is the provider's id of the last model response in a
// history.
func lastResponseID(history []backend.Event) string {
	for i := len(history) - 1; i >= 0; i-- {
		e := history[i]
		if e.Type == backend.EventActivityCompleted && strings.HasPrefix(e.Name, "model:") {
			var resp providers.Response
			if json.Unmarshal(e.Payload, &resp) == nil {
				return resp.ID
			}
		}
	}
	return ""
}
