package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// TestPublishedPendingMatchesHistory checks the list of pending calls that
// runs publish with their records (durable.SetAwaiting), which Pending
// reads across runs, against the one read from each run's history: the
// same calls, fields and order, for approvals with and without a
// deadline, a question, and a call whose arguments are too long to
// publish (read from the history instead).
func TestPublishedPendingMatchesHistory(t *testing.T) {
	type args struct {
		Note string `json:"note"`
	}
	refund := tools.MustNew("refund", "refund", func(context.Context, args) (string, error) { return "ok", nil },
		tools.RequireApproval())
	set, err := tools.NewSet(refund)
	require.NoError(t, err)
	long := strings.Repeat("x", maxAwaitingArgs+1)
	model := scripted.New(providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
		{Name: "refund", Arguments: `{"note":"a"}`},
		{Name: AskHumanTool, Arguments: `{"question":"Which card?"}`},
		{Name: "refund", Arguments: `{"note":"` + long + `"}`},
	}}}, providers.Response{Message: providers.Message{Content: "Done."}})
	plain := &Agent{Name: "plain", Model: model, Tools: set, AskHuman: true}
	timed := &Agent{Name: "timed", Model: model, Tools: set, AskHuman: true, Approval: ApprovalPolicy{Timeout: time.Hour}}

	store := inmem.New()
	rt := NewRuntime(store, Options{})
	require.NoError(t, rt.Register(plain, timed))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	w := rt.NewWorker(durable.WorkerOptions{})
	go w.Run(ctx)

	for _, r := range []struct {
		id string
		a  *Agent
	}{{"p1", plain}, {"t1", timed}} {
		_, err := rt.Start(ctx, r.a, r.id, Input{Message: "refund"})
		require.NoError(t, err)
	}
	var across []PendingCall
	require.Eventually(t, func() bool {
		across, err = rt.Pending(ctx, PendingFilter{})
		return err == nil && len(across) == 6
	}, 30*time.Second, 10*time.Millisecond, "six pending calls across runs")

	var want []PendingCall
	for _, id := range []string{"p1", "t1"} {
		info, err := rt.client.Describe(ctx, id)
		require.NoError(t, err)
		_, ok := rt.awaitingIn(info)
		assert.False(t, ok, "run %s published a call cut short: its list comes from history", id)
		fromHistory, err := rt.pendingInHistory(ctx, id)
		require.NoError(t, err)
		want = append(want, fromHistory...)
	}
	require.Len(t, want, 6)
	assert.Equal(t, KindQuestion, want[1].Kind)
	assert.False(t, want[3].Deadline.IsZero(), "the timed agent's approvals have a deadline")
	for i := range want {
		assert.True(t, want[i].RequestedAt.Equal(across[i].RequestedAt), "call %d's request time", i)
		assert.True(t, want[i].Deadline.Equal(across[i].Deadline), "call %d's deadline", i)
		want[i].RequestedAt, want[i].Deadline = across[i].RequestedAt, across[i].Deadline
	}
	assert.Equal(t, want, across, "pending across runs")

	// Without the long call, a run's published list stands for its
	// history's as it is.
	info, err := rt.client.Describe(ctx, "p1")
	require.NoError(t, err)
	data, err := backend.DecodePayload(info.Awaiting, nil)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"cut":true`, "the long call is published cut short")
	assert.NotContains(t, string(data), long, "the long arguments are not in the record")
	require.NoError(t, rt.Decide(ctx, "p1", Decision{CallID: want[2].CallID, By: "ann", Reason: "too long"}))
	require.Eventually(t, func() bool {
		info, err := rt.client.Describe(ctx, "p1")
		require.NoError(t, err)
		calls, ok := rt.awaitingIn(info)
		return ok && len(calls) == 2 && info.Inbox == 0
	}, 30*time.Second, 10*time.Millisecond, "p1 publishes its two other calls once the long one is decided")
	published, err := rt.Pending(ctx, PendingFilter{RunID: "p1"})
	require.NoError(t, err)
	fromHistory, err := rt.pendingInHistory(ctx, "p1")
	require.NoError(t, err)
	assert.Equal(t, fromHistory, published, "p1's pending calls, published and from history")
}
