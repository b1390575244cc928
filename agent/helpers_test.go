package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// fastModel are model call options that retry at once, to keep tests
// quick.
var fastModel = durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{InitialInterval: 5 * time.Millisecond}}

// fastRetry is a tool retry policy with short waits.
var fastRetry = tools.Retry(durable.RetryPolicy{InitialInterval: 5 * time.Millisecond})

// mustSet makes a tool set.
func mustSet(t *testing.T, ts ...*tools.Tool) *tools.Set {
	t.Helper()
	set, err := tools.NewSet(ts...)
	require.NoError(t, err)
	return set
}

// start starts a run and fails the test if it cannot.
func (e *env) startRun(a *agent.Agent, runID string, in agent.Input) *durable.Run[agent.RunResult] {
	e.t.Helper()
	run, err := e.rt.Start(ctxT(e.t), a, runID, in)
	require.NoError(e.t, err, "start %s", runID)
	return run
}

// result waits for a run's result and fails the test on an error.
func (e *env) result(run *durable.Run[agent.RunResult]) agent.RunResult {
	e.t.Helper()
	res, err := run.Result(ctxT(e.t))
	if err != nil {
		e.dump()
	}
	require.NoError(e.t, err, "run %s", run.ID)
	return res
}

// dump logs every run of the store with its history, to tell why a test
// hung or failed.
func (e *env) dump() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	runs, err := e.rt.Client().ListRuns(ctx, backend.RunFilter{})
	if err != nil {
		e.t.Logf("dump: %v", err)
		return
	}
	for _, r := range runs {
		e.t.Logf("run %s: %s gen %d step %d waiting %q wake %v failure %v", r.ID, r.Status, r.Generation, r.Step, r.Waiting, r.WakeAt, r.Failure)
		h, _ := e.rt.Client().History(ctx, r.ID)
		for _, ev := range h {
			e.t.Logf("  %d %s step %d attempt %d %s %.200s", ev.Seq, ev.Type, ev.Step, ev.Attempt, ev.Name, ev.Payload)
		}
	}
}

// failure waits for a run to fail and returns its error message.
func (e *env) failure(run *durable.Run[agent.RunResult]) string {
	e.t.Helper()
	res, err := run.Result(ctxT(e.t))
	var re *durable.RunError
	require.ErrorAs(e.t, err, &re, "run %s: got result %+v", run.ID, res)
	require.Equal(e.t, backend.StatusFailed, re.Status, "run %s: %v", run.ID, err)
	return err.Error()
}

// history returns a run's current history.
func (e *env) history(runID string) []backend.Event {
	e.t.Helper()
	h, err := e.rt.Run(runID).History(ctxT(e.t))
	require.NoError(e.t, err, "history of %s", runID)
	return h
}

// replays checks that the run's history replays against the agent's code
// without a divergence.
func (e *env) replays(a *agent.Agent, runID string) {
	e.t.Helper()
	h := e.history(runID)
	assert.NoError(e.t, durable.ReplayHistory(e.rt.Workflow(a), h), "run %s: replay", runID)
}

// records returns the payloads of the side effects named name in a
// history, decoded as JSON objects.
func records(t *testing.T, history []backend.Event, name string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range history {
		if ev.Type != backend.EventSideEffect || ev.Name != name {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(ev.Payload, &m), "record %s", name)
		out = append(out, m)
	}
	return out
}

// countEvents counts the events of a type in a history.
func countEvents(history []backend.Event, typ backend.EventType) int {
	n := 0
	for _, ev := range history {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// toolResult returns the content of the tool message that answers callID.
func toolResult(t *testing.T, msgs []providers.Message, callID string) string {
	t.Helper()
	for _, m := range msgs {
		if m.Role == providers.RoleTool && m.ToolCallID == callID {
			return m.Content
		}
	}
	t.Fatalf("no tool message for %s in %+v", callID, msgs)
	return ""
}

// eventually polls cond until it holds, failing the test after a generous
// deadline (never a timing assertion: it only stops a hang).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// onePending waits until the calls f selects are exactly one, and
// returns it.
func (e *env) onePending(f agent.PendingFilter) agent.PendingCall {
	e.t.Helper()
	return e.pending(f, 1)[0]
}

// pending waits until the calls f selects are exactly n, and returns them.
func (e *env) pending(f agent.PendingFilter, n int) []agent.PendingCall {
	e.t.Helper()
	var calls []agent.PendingCall
	eventually(e.t, fmt.Sprintf("%d pending calls (%+v)", n, f), func() bool {
		var err error
		calls, err = e.rt.Pending(context.Background(), f)
		return err == nil && len(calls) == n
	})
	return calls
}

// recorder is a scripted model that keeps every request it is sent, by
// turn, and answers with fn.
type recorder struct {
	mu   sync.Mutex
	reqs map[int][]providers.Request
	fn   func(turn int, req providers.Request) (providers.Response, error)
}

func newRecorder(fn func(turn int, req providers.Request) (providers.Response, error)) (*recorder, *scripted.Model) {
	r := &recorder{reqs: map[int][]providers.Request{}, fn: fn}
	return r, scripted.Func(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		turn := scripted.Turn(req)
		r.mu.Lock()
		r.reqs[turn] = append(r.reqs[turn], req)
		r.mu.Unlock()
		return fn(turn, req)
	})
}

// script makes a recorder that plays responses by turn.
func script(responses ...providers.Response) (*recorder, *scripted.Model) {
	return newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		if turn >= len(responses) {
			return providers.Response{}, durable.NonRetryable(errors.New("script exhausted"))
		}
		return responses[turn], nil
	})
}

// request returns the last request of a turn.
func (r *recorder) request(t *testing.T, turn int) providers.Request {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	reqs := r.reqs[turn]
	require.NotEmpty(t, reqs, "the model was not called for turn %d", turn)
	return reqs[len(reqs)-1]
}

// calls counts the model calls made for a turn.
func (r *recorder) calls(turn int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs[turn])
}

// lastUser returns the text of the last user message of a request.
func lastUser(req providers.Request) string {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == providers.RoleUser {
			return req.Messages[i].Content
		}
	}
	return ""
}

// userTexts returns the user messages of a request.
func userTexts(req providers.Request) []string {
	var out []string
	for _, m := range req.Messages {
		if m.Role == providers.RoleUser {
			out = append(out, m.Content)
		}
	}
	return out
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		assert.Contains(t, s, sub, what)
	}
}

func newMemoryStore() backend.Store { return inmem.New() }

// say sends text to a conversation run and waits for its reply.
func say(ctx context.Context, rt *agent.Runtime, runID, text string) (agent.Reply, error) {
	id, err := rt.Send(ctx, runID, text)
	if err != nil {
		return agent.Reply{}, err
	}
	return rt.Reply(ctx, runID, id)
}
