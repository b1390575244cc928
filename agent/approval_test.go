package agent_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/tools"
)

type refundArgs struct {
	Order  string `json:"order"`
	Amount int    `json:"amount"`
}

type orderArgs struct {
	Order string `json:"order"`
}

// shop counts what its tools did: the refunds made, the lookups.
type shop struct {
	mu      sync.Mutex
	refunds []string // "order:amount", in the order they were made
	lookups int
}

func (s *shop) refunded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refunds)
}

func (s *shop) looked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups
}

// tools returns a refund tool that needs approval above 100, and a lookup
// tool that needs none; opts are added to both.
func (s *shop) tools(t *testing.T, opts ...tools.Option) *tools.Set {
	refund := tools.MustNew("refund", "refund an order", func(ctx context.Context, in refundArgs) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.refunds = append(s.refunds, fmt.Sprintf("%s:%d", in.Order, in.Amount))
		return fmt.Sprintf("refunded %d on %s", in.Amount, in.Order), nil
	}, append(opts, tools.RequireApprovalIf(func(in refundArgs) bool { return in.Amount > 100 }))...)
	lookup := tools.MustNew("lookup", "look an order up", func(ctx context.Context, in orderArgs) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lookups++
		return "order " + in.Order + " is paid", nil
	}, opts...)
	return mustSet(t, refund, lookup)
}

// refundTurn is the model's first turn in the approval tests: a free
// lookup, then two refunds that need approval, then a small one that
// does not.
var refundTurn = toolTurn(
	call("lookup", `{"order":"A1"}`),
	call("refund", `{"order":"A1","amount":500}`),
	call("refund", `{"order":"B2","amount":300}`),
	call("refund", `{"order":"C3","amount":20}`),
)

func refundAgent(s *shop, t *testing.T, name string) (*recorder, *agent.Agent) {
	rec, model := script(refundTurn, answer("Done."))
	return rec, &agent.Agent{Name: name, Instructions: "Refund orders.", Model: model, Tools: s.tools(t), ModelOptions: fastModel}
}

// TestApprovalsDecidedOneByOne is the whole approval flow: free calls run
// at once, the run waits as awaiting_approval, the pending calls are
// listed, approved and rejected one by one, the model is told of the
// rejection, and history records who decided.
func TestApprovalsDecidedOneByOne(t *testing.T) {
	var s shop
	_, a := refundAgent(&s, t, "refunder")
	e := newEnv(t, a)
	testApprovalsDecidedOneByOne(t, e, a, &s)
}

func testApprovalsDecidedOneByOne(t *testing.T, e *env, a *agent.Agent, s *shop) {
	ctx := ctxT(t)
	run := e.startRun(a, "refund-1", agent.Input{Message: "Refund A1 and B2."})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	// The calls that need no approval ran without waiting for a decision.
	eventually(t, "the free calls", func() bool { return s.looked() == 1 && len(s.refunded()) == 1 })
	assert.Equal(t, []string{"C3:20"}, s.refunded(), "refunds before any decision: want only the small one")

	pending, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
	require.NoError(t, err)
	type brief struct{ kind, call, tool, args string }
	var got []brief
	for _, r := range pending {
		assert.Equal(t, run.ID, r.RunID, "pending request %+v", r)
		assert.Equal(t, a.Name, r.Agent, "pending request %+v", r)
		assert.Equal(t, 1, r.Turn, "pending request %+v", r)
		assert.False(t, r.RequestedAt.IsZero(), "pending request %+v: no time of request", r)
		assert.True(t, r.Deadline.IsZero(), "pending request %+v: a deadline without a timeout", r)
		got = append(got, brief{string(r.Kind), r.CallID, r.Tool, r.Arguments})
	}
	want := []brief{
		{"approval", "call_0_1", "refund", `{"order":"A1","amount":500}`},
		{"approval", "call_0_2", "refund", `{"order":"B2","amount":300}`},
	}
	assert.Equal(t, want, got, "pending")
	all, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
	require.NoError(t, err)
	assert.True(t, slices.EqualFunc(all, pending, func(x, y agent.PendingCall) bool { return x.CallID == y.CallID && x.RunID == y.RunID }),
		"approvals across runs %+v, want %+v", all, pending)

	// Approve the first refund: it runs; the second still waits.
	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "alice", Reason: "looks right"}))
	eventually(t, "the approved refund", func() bool { return len(s.refunded()) == 2 })
	eventually(t, "one pending call", func() bool {
		p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
		return err == nil && len(p) == 1 && p[0].CallID == "call_0_2"
	})
	assert.Equal(t, backend.StatusAwaitingApproval, e.waitStatus(run.ID, backend.StatusAwaitingApproval).Status)
	// A decided call is no longer pending, nor is a call never made.
	for _, id := range []string{"call_0_1", "call_0_3", "call_9_9"} {
		err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: id, Approved: true, By: "alice"})
		assert.ErrorIs(t, err, agent.ErrNotPending, "approve %s", id)
	}

	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_2", By: "bob", Reason: "over the limit"}))
	res := e.result(run)
	assert.Equal(t, "Done.", res.Text)
	assert.Equal(t, 2, res.Turns)
	assert.Equal(t, []string{"C3:20", "A1:500"}, s.refunded(), "the rejected call must not run")
	assert.Equal(t, 1, s.looked(), "lookups")
	wantResults := map[string]string{
		"call_0_0": `"order A1 is paid"`,
		"call_0_1": `"refunded 500 on A1"`,
		"call_0_2": "The call was rejected by bob: over the limit. It was not run.",
		"call_0_3": `"refunded 20 on C3"`,
	}
	for id, want := range wantResults {
		assert.Equal(t, want, toolResult(t, res.Messages, id), "tool result %s", id)
	}

	h := e.history(run.ID)
	requested := records(t, h, "approval_requested")
	decided := records(t, h, "approval_decided")
	require.Len(t, requested, 2, "approval requests in history")
	require.Len(t, decided, 2, "approval decisions in history")
	wantDecided := []map[string]any{
		{"agent": a.Name, "turn": 1.0, "call_id": "call_0_1", "tool": "refund", "approved": true, "by": "alice", "reason": "looks right"},
		{"agent": a.Name, "turn": 1.0, "call_id": "call_0_2", "tool": "refund", "by": "bob", "reason": "over the limit"},
	}
	for i, w := range wantDecided {
		// A decision says when its request was made.
		assert.NotNil(t, decided[i]["since"], "decision %d has no time of request: %v", i, decided[i])
		delete(decided[i], "since")
		assert.Equal(t, w, decided[i], "decision %d", i)
	}
	// The approver is also the sender of the signal that carried the
	// decision.
	var senders []string
	for _, ev := range h {
		if ev.Type == backend.EventSignalReceived {
			senders = append(senders, ev.Sender)
		}
	}
	assert.Equal(t, []string{"alice", "bob"}, senders, "signal senders")
	p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
	assert.NoError(t, err)
	assert.Empty(t, p, "pending after the end")
	e.replays(a, run.ID)
}

// TestApprovalsListedAcrossRuns: Approvals lists the calls of every run
// that waits, oldest run first, and none of runs that do not.
func TestApprovalsListedAcrossRuns(t *testing.T) {
	var s shop
	_, a := refundAgent(&s, t, "refunder")
	e := newEnv(t, a)
	ctx := ctxT(t)
	for _, id := range []string{"r-1", "r-2"} {
		e.startRun(a, id, agent.Input{Message: "refund"})
		e.waitStatus(id, backend.StatusAwaitingApproval)
	}
	all, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
	require.NoError(t, err)
	var got []string
	for _, r := range all {
		got = append(got, r.RunID+"/"+r.CallID)
	}
	want := []string{"r-1/call_0_1", "r-1/call_0_2", "r-2/call_0_1", "r-2/call_0_2"}
	assert.Equal(t, want, got, "approvals")
	qs, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindQuestion})
	assert.NoError(t, err)
	assert.Empty(t, qs, "questions: want none")
	for _, id := range []string{"r-1", "r-2"} {
		for _, c := range []string{"call_0_1", "call_0_2"} {
			require.NoError(t, e.rt.Decide(ctx, id, agent.Decision{CallID: c, Approved: true, By: "alice"}))
		}
		assert.Equal(t, "Done.", e.result(e.rt.Run(id)).Text, "run %s", id)
	}
	all, err = e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
	assert.NoError(t, err)
	assert.Empty(t, all, "approvals after the end")
}

// TestApprovalAuthorization: the Authorizer sees the request and the
// person; a refusal is ErrNotAuthorized and sends nothing; the default
// authorizer refuses an empty name.
func TestApprovalAuthorization(t *testing.T) {
	var s shop
	_, a := refundAgent(&s, t, "refunder")
	var mu sync.Mutex
	var seen []string
	auth := agent.AuthorizerFunc(func(ctx context.Context, req agent.PendingCall, by string) error {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s %s %s", by, req.RunID, req.CallID, req.Tool))
		mu.Unlock()
		if by != "manager" {
			return errors.New("only managers approve refunds")
		}
		return nil
	})
	e := newEnvOn(t, newMemoryStore(), agent.Options{Authorizer: auth}, a)
	ctx := ctxT(t)
	run := e.startRun(a, "auth-1", agent.Input{Message: "refund"})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)

	err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "intern"})
	require.ErrorIs(t, err, agent.ErrNotAuthorized, "approve by intern")
	mustContain(t, "refusal", err.Error(), "only managers approve refunds")
	err = e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_2", By: "intern", Reason: "no"})
	assert.ErrorIs(t, err, agent.ErrNotAuthorized, "reject by intern")
	mu.Lock()
	assert.Equal(t, []string{"intern auth-1 call_0_1 refund", "intern auth-1 call_0_2 refund"}, seen, "authorizer saw")
	mu.Unlock()
	// Nothing was sent: no signal reached the run, and both calls wait.
	assert.Zero(t, countEvents(e.history(run.ID), backend.EventSignalReceived), "signals in history after refused decisions")
	p, _ := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
	assert.Len(t, p, 2, "pending: want both calls")

	for _, c := range []string{"call_0_1", "call_0_2"} {
		require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: c, Approved: true, By: "manager"}))
	}
	e.result(run)
	for _, d := range records(t, e.history(run.ID), "approval_decided") {
		assert.Equal(t, "manager", d["by"], "decision %v", d)
		assert.Equal(t, true, d["approved"], "decision %v", d)
	}

	// The default authorizer wants a name.
	e2 := newEnv(t, a)
	run2 := e2.startRun(a, "auth-2", agent.Input{Message: "refund"})
	e2.waitStatus(run2.ID, backend.StatusAwaitingApproval)
	err = e2.rt.Decide(ctx, run2.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: ""})
	assert.ErrorIs(t, err, agent.ErrNotAuthorized, "approve with no name")
	err = e2.rt.Decide(ctx, run2.ID, agent.Decision{CallID: "call_0_2", Approved: false})
	assert.ErrorIs(t, err, agent.ErrNotAuthorized, "reject with no name")
	assert.Zero(t, countEvents(e2.history(run2.ID), backend.EventSignalReceived), "signals in history after refused decisions")
}

// TestApprovalWhileNoWorkerRuns: a decision sent while no worker holds
// the run waits in its inbox and takes effect when a worker starts.
func TestApprovalWhileNoWorkerRuns(t *testing.T) {
	var s shop
	_, a := refundAgent(&s, t, "refunder")
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "offline-1", agent.Input{Message: "refund"})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	eventually(t, "the free calls", func() bool { return s.looked() == 1 && len(s.refunded()) == 1 })
	e.halt()

	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "alice"}))
	// The decision waits in the run's inbox: the call is no longer
	// pending, across runs or in the run.
	for _, f := range []agent.PendingFilter{{}, {RunID: run.ID}} {
		left, err := e.rt.Pending(ctx, f)
		require.NoError(t, err)
		require.Len(t, left, 1, "pending (%+v) after one decision with no worker", f)
		assert.Equal(t, "call_0_2", left[0].CallID)
	}
	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_2", By: "alice", Reason: "duplicate"}))
	// Nobody ran anything while no worker ran.
	assert.Equal(t, []string{"C3:20"}, s.refunded(), "refunds with no worker")
	info, _ := run.Describe(ctx)
	assert.Equal(t, backend.StatusAwaitingApproval, info.Status, "status with no worker")

	e.start()
	res := e.result(run)
	assert.Equal(t, []string{"C3:20", "A1:500"}, s.refunded(), "refunds")
	assert.Equal(t, 1, s.looked(), "lookups: a completed call ran again")
	mustContain(t, "rejected call result", toolResult(t, res.Messages, "call_0_2"), "rejected by alice: duplicate", "not run")
	e.replays(a, run.ID)
}

// TestApprovalTimeout: a call nobody decides within Approval.Timeout is
// rejected, by "timeout"; with OnTimeout true it is approved.
func TestApprovalTimeout(t *testing.T) {
	for _, onTimeout := range []bool{false, true} {
		t.Run(fmt.Sprint("approve=", onTimeout), func(t *testing.T) {
			var s shop
			_, a := refundAgent(&s, t, "refunder")
			a.Approval = agent.ApprovalPolicy{Timeout: 50 * time.Millisecond, OnTimeout: onTimeout}
			e := newEnv(t, a)
			run := e.startRun(a, "late-1", agent.Input{Message: "refund"})
			res := e.result(run)
			h := e.history(run.ID)
			requested := records(t, h, "approval_requested")
			if assert.Len(t, requested, 2, "approval requests") {
				assert.NotNil(t, requested[0]["deadline"], "approval requests %v: want a deadline", requested)
			}
			decided := records(t, h, "approval_decided")
			assert.Len(t, decided, 2, "decisions")
			for _, d := range decided {
				assert.Equal(t, "timeout", d["by"], "decision %v", d)
				assert.Equal(t, onTimeout, d["approved"] == true, "decision %v", d)
				mustContain(t, "decision reason", fmt.Sprint(d["reason"]), "no decision within 50ms")
			}
			if onTimeout {
				assert.Len(t, s.refunded(), 3, "refunds: want all three")
				assert.Equal(t, `"refunded 500 on A1"`, toolResult(t, res.Messages, "call_0_1"))
			} else {
				assert.Equal(t, []string{"C3:20"}, s.refunded(), "refunds: want only the small one")
				for _, id := range []string{"call_0_1", "call_0_2"} {
					mustContain(t, "result", toolResult(t, res.Messages, id), "rejected by timeout", "not run")
				}
			}
			e.replays(a, run.ID)
		})
	}
}

// TestApprovalRequiredAlways: tools.RequireApproval makes every call
// wait; a decision for another turn's call is not pending.
func TestApprovalRequiredAlways(t *testing.T) {
	var mu sync.Mutex
	var deleted []string
	del := tools.MustNew("delete", "delete a file", func(ctx context.Context, in struct {
		Path string `json:"path"`
	}) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		deleted = append(deleted, in.Path)
		return "deleted", nil
	}, tools.RequireApproval())
	_, model := script(
		toolTurn(call("delete", `{"path":"/a"}`)),
		toolTurn(call("delete", `{"path":"/b"}`)),
		answer("ok"),
	)
	a := &agent.Agent{Name: "janitor", Model: model, Tools: mustSet(t, del)}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "del-1", agent.Input{Message: "clean"})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_1_0", Approved: true, By: "alice"})
	assert.ErrorIs(t, err, agent.ErrNotPending, "approve a call not yet made")
	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_0", Approved: true, By: "alice"}))
	eventually(t, "the second approval", func() bool {
		p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
		return err == nil && len(p) == 1 && p[0].CallID == "call_1_0" && p[0].Turn == 2
	})
	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_1_0", Approved: true, By: "bob"}))
	e.result(run)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"/a", "/b"}, deleted)
	e.replays(a, run.ID)
}

// TestApprovalsListedWhileAToolRuns: a call waiting for approval is listed
// even while another call of its turn still runs (the run is then
// reported as running, not awaiting_approval); so is a question.
func TestApprovalsListedWhileAToolRuns(t *testing.T) {
	release := make(chan struct{})
	var started sync.Once
	running := make(chan struct{})
	slow := tools.MustNew("slow", "a slow report", func(ctx context.Context, in orderArgs) (string, error) {
		started.Do(func() { close(running) })
		select {
		case <-release:
			return "report " + in.Order, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	var s shop
	set, err := tools.Join(s.tools(t), mustSet(t, slow))
	require.NoError(t, err)
	_, model := script(
		toolTurn(call("slow", `{"order":"A1"}`), call("refund", `{"order":"A1","amount":500}`),
			call("ask_human", `{"question":"Sure?"}`)),
		answer("Done."),
	)
	a := &agent.Agent{Name: "busy", Model: model, Tools: set, AskHuman: true}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "busy-1", agent.Input{Message: "refund"})
	<-running
	eventually(t, "the recorded requests", func() bool {
		p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
		return err == nil && len(p) == 2
	})
	all, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
	// A plain if: the run's status, read only on a failure, tells why.
	if err != nil || len(all) != 1 || all[0].CallID != "call_0_1" {
		info, _ := run.Describe(ctx)
		t.Fatalf("approvals %+v, %v (run status %s): want the refund", all, err, info.Status)
	}
	qs, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindQuestion})
	require.NoError(t, err)
	require.Len(t, qs, 1, "questions: want the question")
	assert.Equal(t, "call_0_2", qs[0].CallID)
	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "alice"}))
	require.NoError(t, e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_2", By: "alice", Text: "yes"}))
	close(release)
	res := e.result(run)
	assert.Equal(t, `"report A1"`, toolResult(t, res.Messages, "call_0_0"), "slow result")
	assert.Equal(t, []string{"A1:500"}, s.refunded(), "refunds")
	e.replays(a, run.ID)
}

// TestCancelWhileAwaitingApproval: a run canceled while it waits for a
// decision ends canceled; its calls are no longer pending.
func TestCancelWhileAwaitingApproval(t *testing.T) {
	var s shop
	_, a := refundAgent(&s, t, "refunder")
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "cancel-1", agent.Input{Message: "refund"})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	require.NoError(t, run.Cancel(ctx))
	_, err := run.Result(ctx)
	var re *durable.RunError
	require.ErrorAs(t, err, &re, "result error: want canceled")
	assert.Equal(t, backend.StatusCanceled, re.Status)
	assert.ErrorIs(t, err, durable.ErrCanceled)
	p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
	assert.NoError(t, err)
	assert.Empty(t, p, "pending after cancel")
	err = e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "alice"})
	assert.ErrorIs(t, err, agent.ErrNotPending, "approve after cancel")
	assert.Equal(t, []string{"C3:20"}, s.refunded(), "refunds")
	events := follow(t, e, run.ID, "")
	require.NotEmpty(t, events)
	last := events[len(events)-1]
	assert.Equal(t, agent.LiveRunFinished, last.Type, "last event %+v", last)
	assert.Equal(t, backend.StatusCanceled, last.Status, "last event %+v", last)
	e.replays(a, run.ID)
}

// TestUndecodableSignalsAreIgnored: a decision, an answer or a message
// that does not decode (sent by hand, or by another version) is dropped:
// it does not fail the run, which goes on waiting.
func TestUndecodableSignalsAreIgnored(t *testing.T) {
	var s shop
	_, model := script(
		toolTurn(call("refund", `{"order":"A1","amount":500}`), call("ask_human", `{"question":"Why?"}`)),
		answer("Done."),
	)
	a := &agent.Agent{Name: "sturdy", Model: model, Tools: s.tools(t), AskHuman: true}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "garbage-1", agent.Input{Message: "refund"})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	for _, name := range []string{"cairn.approval", "cairn.answer"} {
		require.NoError(t, e.rt.Client().Signal(ctx, run.ID, name, "not an object"))
	}
	eventually(t, "the bad signals in history", func() bool {
		return countEvents(e.history(run.ID), backend.EventSignalReceived) == 2
	})
	info, err := run.Describe(ctx)
	require.NoError(t, err)
	assert.False(t, info.Status.Terminal(), "run after bad signals: %+v", info)
	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_0", Approved: true, By: "alice"}))
	require.NoError(t, e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_1", By: "alice", Text: "broken"}))
	assert.Equal(t, "Done.", e.result(run).Text)
	e.replays(a, run.ID)
}

// TestSecondDecisionWhileNoWorkerRuns: a decision already sent, but not
// yet taken in by the run (no worker runs), settles its call: a second
// one is refused with ErrNotPending rather than silently dropped.
func TestSecondDecisionWhileNoWorkerRuns(t *testing.T) {
	var s shop
	_, a := refundAgent(&s, t, "refunder")
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "twice-1", agent.Input{Message: "refund"})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	e.halt()
	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "alice"}))
	err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", By: "bob", Reason: "no"})
	assert.ErrorIs(t, err, agent.ErrNotPending, "second decision")
	p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
	require.NoError(t, err)
	require.Len(t, p, 1, "pending: want only the undecided call")
	assert.Equal(t, "call_0_2", p[0].CallID, "pending: want only the undecided call")
	all, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
	require.NoError(t, err)
	require.Len(t, all, 1, "approvals: want only the undecided call")
	assert.Equal(t, "call_0_2", all[0].CallID, "approvals: want only the undecided call")
	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_2", By: "bob", Reason: "no"}))
	e.start()
	res := e.result(run)
	assert.Equal(t, `"refunded 500 on A1"`, toolResult(t, res.Messages, "call_0_1"), "approved call result")
	decided := records(t, e.history(run.ID), "approval_decided")
	require.Len(t, decided, 2, "decisions")
	assert.Equal(t, "alice", decided[0]["by"])
	assert.Equal(t, "bob", decided[1]["by"])
}

// byAction is an Authorizer that is a RunAuthorizer too: it lets only
// the named person take each action, and remembers the records it saw.
type byAction struct {
	who  map[agent.RunAction]string
	seen []backend.RunInfo
}

func (*byAction) Authorize(context.Context, agent.PendingCall, string) error { return nil }

func (a *byAction) AuthorizeRun(_ context.Context, run backend.RunInfo, action agent.RunAction, by string) error {
	a.seen = append(a.seen, run)
	if a.who[action] != by {
		return fmt.Errorf("only %s may %s", a.who[action], action)
	}
	return nil
}

// TestAuthorizeRun: Runtime.AuthorizeRun asks a RunAuthorizer, with the
// run's record; without one any name may; no name never may.
func TestAuthorizeRun(t *testing.T) {
	ctx := ctxT(t)
	_, model := script(answer("Hi."))
	a := &agent.Agent{Name: "greeter", Model: model}
	auth := &byAction{who: map[agent.RunAction]string{agent.RunCancel: "ops", agent.RunSend: "ann"}}
	e := newEnvOn(t, inmem.New(), agent.Options{Authorizer: auth}, a)
	e.result(e.startRun(a, "g-1", agent.Input{Message: "Hello."}))

	require.NoError(t, e.rt.AuthorizeRun(ctx, "g-1", agent.RunCancel, "ops"))
	err := e.rt.AuthorizeRun(ctx, "g-1", agent.RunCancel, "ann")
	require.ErrorIs(t, err, agent.ErrNotAuthorized)
	assert.Contains(t, err.Error(), "only ops may cancel")
	require.ErrorIs(t, e.rt.AuthorizeRun(ctx, "g-1", agent.RunSend, ""), agent.ErrNotAuthorized, "no name")
	require.ErrorIs(t, e.rt.AuthorizeRun(ctx, "nobody", agent.RunSend, "ann"), backend.ErrRunNotFound)
	require.NotEmpty(t, auth.seen)
	assert.Equal(t, "g-1", auth.seen[0].ID, "the record the RunAuthorizer saw")
	assert.Equal(t, "greeter", auth.seen[0].Workflow)

	plain := newEnvOn(t, inmem.New(), agent.Options{}, a)
	plain.result(plain.startRun(a, "g-2", agent.Input{Message: "Hello."}))
	assert.NoError(t, plain.rt.AuthorizeRun(ctx, "g-2", agent.RunResume, "anyone"), "without a RunAuthorizer")
	assert.ErrorIs(t, plain.rt.AuthorizeRun(ctx, "g-2", agent.RunResume, ""), agent.ErrNotAuthorized, "no name, without a RunAuthorizer")
}
