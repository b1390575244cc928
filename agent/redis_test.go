package agent_test

import (
	"testing"

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
	if err != nil {
		t.Fatal(err)
	}
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
	if n := len(ofType(events, agent.LiveApprovalDecided)); n != 2 {
		t.Errorf("%d approval_decided events on Redis, want 2", n)
	}
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
	for _, c := range []string{"call_0_1", "call_0_2"} {
		if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: c, Approved: true, By: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	e.start()
	res := e.result(run)
	if res.Text != "Done." || len(s.refunded()) != 3 {
		t.Fatalf("result %+v, refunds %v", res, s.refunded())
	}
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
		if err != nil {
			t.Fatal(err)
		}
		last = r
	}
	if last.Text != "#2 one|two|three" {
		t.Fatalf("last reply %+v", last)
	}
	if err := e.rt.End(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	if res := e.result(run); res.Text != last.Text {
		t.Fatalf("result %+v", res)
	}
	e.replays(a, run.ID)
}
