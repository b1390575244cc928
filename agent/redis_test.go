package agent_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// newRedisEnv is an env on a private redis-server.
func newRedisEnv(t *testing.T, opts agent.Options, agents ...*agent.Agent) *env {
	t.Helper()
	srv := redistest.Start(t)
	store, err := redis.Open(srv.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	return newEnvOn(t, store, opts, agents...)
}

// TestRedisApprovals runs the approval flow on the Redis store.
func TestRedisApprovals(t *testing.T) {
	var s shop
	_, a := refundAgent(&s, t, "refunder")
	e := newRedisEnv(t, agent.Options{}, a)
	testApprovalsDecidedOneByOne(t, e, a, &s)
	events := follow(t, e, "refund-1", "")
	assert.Len(t, ofType(events, agent.LiveApprovalDecided), 2, "approval_decided events on Redis")
}

// TestRedisApprovalWhileNoWorkerRuns: on Redis, a decision sent while no
// worker runs waits in the run's inbox.
func TestRedisApprovalWhileNoWorkerRuns(t *testing.T) {
	var s shop
	_, a := refundAgent(&s, t, "refunder")
	e := newRedisEnv(t, agent.Options{}, a)
	ctx := ctxT(t)
	run := e.startRun(a, "offline-r", agent.Input{Message: "refund"})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	e.halt()
	for i, c := range []string{"call_0_1", "call_0_2"} {
		across, err := e.rt.Pending(ctx, agent.PendingFilter{})
		require.NoError(t, err)
		require.Len(t, across, 2-i, "pending across runs before decision %d (the index and the inbox on Redis)", i+1)
		assert.Equal(t, c, across[0].CallID)
		require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: c, Approved: true, By: "alice"}))
	}
	e.start()
	res := e.result(run)
	assert.Equal(t, "Done.", res.Text)
	assert.Len(t, s.refunded(), 3)
	e.replays(a, run.ID)
}

// TestRedisConversation: a conversation over a continue-as-new on Redis.
func TestRedisConversation(t *testing.T) {
	_, a := echoAgent("chat", 1)
	e := newRedisEnv(t, agent.Options{}, a)
	ctx := ctxT(t)
	run := e.startRun(a, "chat-r", agent.Input{Conversation: true})
	var last agent.Reply
	for _, text := range []string{"one", "two", "three"} {
		r, err := say(ctx, e.rt, run.ID, text)
		require.NoError(t, err)
		last = r
	}
	assert.Equal(t, "#2 one|two|three", last.Text, "last reply")
	require.NoError(t, e.rt.End(ctx, run.ID))
	assert.Equal(t, last.Text, e.result(run).Text, "result")
	e.replays(a, run.ID)
}
