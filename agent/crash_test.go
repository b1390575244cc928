package agent_test

import (
	"context"
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

// TestRestartsThroughoutApprovalFlow stops and starts the worker as the
// run's history grows, while it runs tools, waits for approvals and
// answers: the run ends as it would have without restarts, the
// rejected call never runs, and its history replays.
func TestRestartsThroughoutApprovalFlow(t *testing.T) {
	var s shop
	_, model := script(
		toolTurn(call("lookup", `{"order":"A1"}`), call("refund", `{"order":"A1","amount":500}`),
			call("refund", `{"order":"B2","amount":300}`), call("ask_human", `{"question":"Reason?"}`)),
		toolTurn(call("lookup", `{"order":"B2"}`)),
		answer("Done."),
	)
	// Each restart may cut a running call off, before its body runs, and
	// lost attempts count: allow more than the restarts can take.
	retry := tools.Retry(durable.RetryPolicy{MaximumAttempts: 20, InitialInterval: time.Millisecond})
	a := &agent.Agent{Name: "restarted", Model: model, Tools: s.tools(t, retry), AskHuman: true, ModelOptions: fastModel}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "restart-1", agent.Input{Message: "refund"})
	seen := 0
	restarts, busyRestarts := 0, 0
	for {
		info, err := run.Describe(ctx)
		require.NoError(t, err)
		if info.Status.Terminal() {
			break
		}
		// Restart at every rest, and twice while the run is busy: each
		// busy restart cuts an attempt off, and attempts are counted.
		if int(info.HistoryLen) > seen && (info.Status != backend.StatusRunning || busyRestarts < 2) {
			seen = int(info.HistoryLen)
			if info.Status == backend.StatusRunning {
				busyRestarts++
			}
			e.halt()
			e.start()
			restarts++
		}
		if info.Status == backend.StatusAwaitingApproval || info.Status == backend.StatusWaiting {
			decide(t, e, run.ID)
		}
		require.NotEqual(t, backend.StatusParked, info.Status, "run parked: %+v", info.Failure)
		// A run that makes no progress for long is stuck: say how.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = e.store.(backend.Watcher).WatchRun(wctx, run.ID, info.Version)
		cancel()
		if err != nil {
			e.dump()
		}
		require.NoError(t, err, "no progress for 10 s: status %s, %d restarts", info.Status, restarts)
	}
	res := e.result(run)
	assert.Equal(t, "Done.", res.Text)
	assert.Equal(t, 3, res.Turns)
	mustContain(t, "rejected call", toolResult(t, res.Messages, "call_0_2"), "rejected by bob")
	assert.Equal(t, `{"answer":"fraud","answered_by":"carol"}`, toolResult(t, res.Messages, "call_0_3"), "answer")
	for _, r := range s.refunded() {
		assert.Equal(t, "A1:500", r, "a refund ran: only the approved one may")
	}
	assert.Contains(t, s.refunded(), "A1:500", "the approved refund did not run")
	t.Logf("%d restarts", restarts)
	e.replays(a, run.ID)
}

// decide approves the first refund, rejects the second and answers the
// question, whichever of them wait.
func decide(t *testing.T, e *env, runID string) {
	ctx := ctxT(t)
	pending, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: runID})
	require.NoError(t, err)
	for _, p := range pending {
		switch p.CallID {
		case "call_0_1":
			err = e.rt.Decide(ctx, runID, agent.Decision{CallID: p.CallID, Approved: true, By: "alice"})
		case "call_0_2":
			err = e.rt.Decide(ctx, runID, agent.Decision{CallID: p.CallID, By: "bob", Reason: "twice"})
		case "call_0_3":
			err = e.rt.Answer(ctx, runID, agent.Answer{CallID: p.CallID, By: "carol", Text: "fraud"})
		}
		require.NoError(t, err)
	}
}

// TestHelperAwaitingApproval: a helper's call that needs approval is
// listed with the child run's id; approved while no worker runs, the
// child and then the parent go on.
func TestHelperAwaitingApproval(t *testing.T) {
	var s shop
	_, clerkModel := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		if turn == 0 {
			return toolTurn(call("refund", `{"order":"Z9","amount":900}`)), nil
		}
		return answer("refunded Z9"), nil
	})
	clerk := &agent.Agent{Name: "clerk", Model: clerkModel, Tools: s.tools(t)}
	_, bossModel := script(toolTurn(call("clerk", `{"input":"refund Z9"}`)), answer("The clerk refunded Z9."))
	boss := &agent.Agent{Name: "boss", Model: bossModel, Helpers: []*agent.Agent{clerk}}
	e := newEnv(t, boss)
	ctx := ctxT(t)
	run := e.startRun(boss, "boss-2", agent.Input{Message: "refund Z9"})
	var reqs []agent.PendingCall
	eventually(t, "the child's approval", func() bool {
		var err error
		reqs, err = e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
		return err == nil && len(reqs) == 1
	})
	child := reqs[0]
	require.NotEqual(t, run.ID, child.RunID, "approval %+v, want the child run's", child)
	assert.Equal(t, "clerk", child.Agent, "approval %+v", child)
	assert.Equal(t, "refund", child.Tool, "approval %+v", child)
	e.waitStatus(run.ID, backend.StatusWaiting) // for its child
	e.halt()
	require.NoError(t, e.rt.Decide(ctx, child.RunID, agent.Decision{CallID: child.CallID, Approved: true, By: "alice"}))
	e.start()
	res := e.result(run)
	assert.Equal(t, "The clerk refunded Z9.", res.Text)
	assert.Equal(t, `"refunded Z9"`, toolResult(t, res.Messages, "call_0_0"))
	assert.Equal(t, []string{"Z9:900"}, s.refunded(), "refunds")
	e.replays(boss, run.ID)
	e.replays(clerk, child.RunID)
}
