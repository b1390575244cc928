package agent_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
)

// TestWorkerRechecksDecisions: a decision or an answer that skipped the
// Authorizer (sent as a bare signal, as a client that skips the check, or
// anyone with the store's credentials, could) is checked again by the
// worker that takes it into history: refused, it is recorded as
// decision_refused with who and why, the tool does not run, the model is
// told nothing, and the call keeps waiting for someone allowed.
func TestWorkerRechecksDecisions(t *testing.T) {
	var s shop
	_, model := script(
		toolTurn(call("refund", `{"order":"A1","amount":500}`), call("ask_human", `{"question":"Which card?"}`)),
		answer("Done."),
	)
	a := &agent.Agent{Name: "guarded", Model: model, Tools: s.tools(t), AskHuman: true, ModelOptions: fastModel}
	managers := agent.AuthorizerFunc(func(_ context.Context, req agent.PendingCall, by string) error {
		if by != "manager" {
			return fmt.Errorf("%q is not a manager", by)
		}
		return nil
	})
	e := newEnvOn(t, newMemoryStore(), agent.Options{Authorizer: managers}, a)
	ctx := ctxT(t)
	run := e.startRun(a, "recheck-1", agent.Input{Message: "refund A1"})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)

	// Bare signals, past Runtime.Decide and Runtime.Answer.
	c := e.rt.Client()
	require.NoError(t, c.Signal(ctx, run.ID, "cairn.approval",
		map[string]any{"turn": 1, "call_id": "call_0_0", "approved": true, "by": "intern"}))
	require.NoError(t, c.Signal(ctx, run.ID, "cairn.answer",
		map[string]any{"turn": 1, "call_id": "call_0_1", "by": "", "text": "the gold one"}))
	var refused []map[string]any
	eventually(t, "two refusals in history", func() bool {
		refused = records(t, e.history(run.ID), "decision_refused")
		return len(refused) == 2
	})
	for _, r := range refused {
		assert.NotNil(t, r["since"], "refusal %v: no time of request", r)
		delete(r, "since")
	}
	assert.Equal(t, []map[string]any{
		{"agent": "guarded", "turn": 1.0, "call_id": "call_0_0", "tool": "refund", "by": "intern", "reason": `"intern" is not a manager`},
		{"agent": "guarded", "turn": 1.0, "call_id": "call_0_1", "tool": "ask_human", "reason": `"" is not a manager`},
	}, refused, "refusals")
	assert.Empty(t, records(t, e.history(run.ID), "approval_decided"), "decisions after refusals")
	assert.Empty(t, s.refunded(), "refunds after a refused approval")
	// Both calls still wait, and the run with them.
	eventually(t, "both calls pending again", func() bool {
		p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
		return err == nil && len(p) == 2
	})
	assert.Equal(t, backend.StatusAwaitingApproval, e.waitStatus(run.ID, backend.StatusAwaitingApproval).Status)

	// Someone allowed decides, through the Runtime: the run goes on.
	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_0", Approved: true, By: "manager"}))
	require.NoError(t, e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_1", By: "manager", Text: "the blue one"}))
	res := e.result(run)
	assert.Equal(t, "Done.", res.Text)
	assert.Equal(t, []string{"A1:500"}, s.refunded(), "refunds")
	assert.JSONEq(t, `{"answer":"the blue one","answered_by":"manager"}`, toolResult(t, res.Messages, "call_0_1"))
	assert.Len(t, records(t, e.history(run.ID), "decision_refused"), 2, "refusals at the end")
	// The verdicts are journaled: replay asks no Authorizer.
	e.replays(a, run.ID)
}
