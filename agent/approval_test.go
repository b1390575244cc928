package agent_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
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
	if got := s.refunded(); !slices.Equal(got, []string{"C3:20"}) {
		t.Fatalf("refunds before any decision: %v, want only the small one", got)
	}

	pending, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
	if err != nil {
		t.Fatal(err)
	}
	type brief struct{ kind, call, tool, args string }
	var got []brief
	for _, r := range pending {
		if r.RunID != run.ID || r.Agent != a.Name || r.Turn != 1 || r.RequestedAt.IsZero() || !r.Deadline.IsZero() {
			t.Errorf("pending request %+v", r)
		}
		got = append(got, brief{string(r.Kind), r.CallID, r.Tool, r.Arguments})
	}
	want := []brief{
		{"approval", "call_0_1", "refund", `{"order":"A1","amount":500}`},
		{"approval", "call_0_2", "refund", `{"order":"B2","amount":300}`},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pending\n got %+v\nwant %+v", got, want)
	}
	all, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(all, pending, func(x, y agent.PendingCall) bool { return x.CallID == y.CallID && x.RunID == y.RunID }) {
		t.Fatalf("approvals across runs %+v, want %+v", all, pending)
	}

	// Approve the first refund: it runs; the second still waits.
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "alice", Reason: "looks right"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the approved refund", func() bool { return len(s.refunded()) == 2 })
	eventually(t, "one pending call", func() bool {
		p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
		return err == nil && len(p) == 1 && p[0].CallID == "call_0_2"
	})
	if info := e.waitStatus(run.ID, backend.StatusAwaitingApproval); info.Status != backend.StatusAwaitingApproval {
		t.Fatalf("status %s", info.Status)
	}
	// A decided call is no longer pending, nor is a call never made.
	for _, id := range []string{"call_0_1", "call_0_3", "call_9_9"} {
		if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: id, Approved: true, By: "alice"}); !errors.Is(err, agent.ErrNotPending) {
			t.Errorf("approve %s: %v, want ErrNotPending", id, err)
		}
	}

	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_2", By: "bob", Reason: "over the limit"}); err != nil {
		t.Fatal(err)
	}
	res := e.result(run)
	if res.Text != "Done." || res.Turns != 2 {
		t.Fatalf("result %+v", res)
	}
	if got := s.refunded(); !slices.Equal(got, []string{"C3:20", "A1:500"}) {
		t.Errorf("refunds %v: the rejected call must not run", got)
	}
	if s.looked() != 1 {
		t.Errorf("lookups %d, want 1", s.looked())
	}
	wantResults := map[string]string{
		"call_0_0": `"order A1 is paid"`,
		"call_0_1": `"refunded 500 on A1"`,
		"call_0_2": "The call was rejected by bob: over the limit. It was not run.",
		"call_0_3": `"refunded 20 on C3"`,
	}
	for id, want := range wantResults {
		if got := toolResult(t, res.Messages, id); got != want {
			t.Errorf("tool result %s = %q, want %q", id, got, want)
		}
	}

	h := e.history(run.ID)
	requested := records(t, h, "approval_requested")
	decided := records(t, h, "approval_decided")
	if len(requested) != 2 || len(decided) != 2 {
		t.Fatalf("history has %d approval requests and %d decisions, want 2 and 2", len(requested), len(decided))
	}
	wantDecided := []map[string]any{
		{"agent": a.Name, "turn": 1.0, "call_id": "call_0_1", "tool": "refund", "approved": true, "by": "alice", "reason": "looks right"},
		{"agent": a.Name, "turn": 1.0, "call_id": "call_0_2", "tool": "refund", "by": "bob", "reason": "over the limit"},
	}
	for i, w := range wantDecided {
		// A decision says when its request was made.
		if decided[i]["since"] == nil {
			t.Errorf("decision %d has no time of request: %v", i, decided[i])
		}
		delete(decided[i], "since")
		if fmt.Sprint(decided[i]) != fmt.Sprint(w) {
			t.Errorf("decision %d = %v, want %v", i, decided[i], w)
		}
	}
	// The approver is also the sender of the signal that carried the
	// decision.
	var senders []string
	for _, ev := range h {
		if ev.Type == backend.EventSignalReceived {
			senders = append(senders, ev.Sender)
		}
	}
	if !slices.Equal(senders, []string{"alice", "bob"}) {
		t.Errorf("signal senders %v", senders)
	}
	if p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID}); err != nil || len(p) != 0 {
		t.Errorf("pending after the end: %v, %v", p, err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range all {
		got = append(got, r.RunID+"/"+r.CallID)
	}
	want := []string{"r-1/call_0_1", "r-1/call_0_2", "r-2/call_0_1", "r-2/call_0_2"}
	if !slices.Equal(got, want) {
		t.Fatalf("approvals %v, want %v", got, want)
	}
	qs, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindQuestion})
	if err != nil || len(qs) != 0 {
		t.Errorf("questions %v, %v: want none", qs, err)
	}
	for _, id := range []string{"r-1", "r-2"} {
		for _, c := range []string{"call_0_1", "call_0_2"} {
			if err := e.rt.Decide(ctx, id, agent.Decision{CallID: c, Approved: true, By: "alice"}); err != nil {
				t.Fatal(err)
			}
		}
		if res := e.result(e.rt.Run(id)); res.Text != "Done." {
			t.Fatalf("run %s: %+v", id, res)
		}
	}
	if all, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval}); err != nil || len(all) != 0 {
		t.Errorf("approvals after the end: %v, %v", all, err)
	}
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
	if !errors.Is(err, agent.ErrNotAuthorized) {
		t.Fatalf("approve by intern: %v, want ErrNotAuthorized", err)
	}
	mustContain(t, "refusal", err.Error(), "only managers approve refunds")
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_2", By: "intern", Reason: "no"}); !errors.Is(err, agent.ErrNotAuthorized) {
		t.Fatalf("reject by intern: %v, want ErrNotAuthorized", err)
	}
	mu.Lock()
	if want := []string{"intern auth-1 call_0_1 refund", "intern auth-1 call_0_2 refund"}; !slices.Equal(seen, want) {
		t.Errorf("authorizer saw %v, want %v", seen, want)
	}
	mu.Unlock()
	// Nothing was sent: no signal reached the run, and both calls wait.
	if n := countEvents(e.history(run.ID), backend.EventSignalReceived); n != 0 {
		t.Fatalf("%d signals in history after refused decisions", n)
	}
	if p, _ := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID}); len(p) != 2 {
		t.Fatalf("pending %v, want both calls", p)
	}

	for _, c := range []string{"call_0_1", "call_0_2"} {
		if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: c, Approved: true, By: "manager"}); err != nil {
			t.Fatal(err)
		}
	}
	e.result(run)
	for _, d := range records(t, e.history(run.ID), "approval_decided") {
		if d["by"] != "manager" || d["approved"] != true {
			t.Errorf("decision %v", d)
		}
	}

	// The default authorizer wants a name.
	e2 := newEnv(t, a)
	run2 := e2.startRun(a, "auth-2", agent.Input{Message: "refund"})
	e2.waitStatus(run2.ID, backend.StatusAwaitingApproval)
	if err := e2.rt.Decide(ctx, run2.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: ""}); !errors.Is(err, agent.ErrNotAuthorized) {
		t.Fatalf("approve with no name: %v, want ErrNotAuthorized", err)
	}
	if err := e2.rt.Decide(ctx, run2.ID, agent.Decision{CallID: "call_0_2", Approved: false}); !errors.Is(err, agent.ErrNotAuthorized) {
		t.Fatalf("reject with no name: %v, want ErrNotAuthorized", err)
	}
	if n := countEvents(e2.history(run2.ID), backend.EventSignalReceived); n != 0 {
		t.Fatalf("%d signals in history after refused decisions", n)
	}
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

	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_2", By: "alice", Reason: "duplicate"}); err != nil {
		t.Fatal(err)
	}
	// Nobody ran anything while no worker ran.
	if got := s.refunded(); !slices.Equal(got, []string{"C3:20"}) {
		t.Fatalf("refunds with no worker: %v", got)
	}
	if info, _ := run.Describe(ctx); info.Status != backend.StatusAwaitingApproval {
		t.Fatalf("status with no worker: %s", info.Status)
	}

	e.start()
	res := e.result(run)
	if got := s.refunded(); !slices.Equal(got, []string{"C3:20", "A1:500"}) {
		t.Errorf("refunds %v", got)
	}
	if s.looked() != 1 {
		t.Errorf("lookups %d: a completed call ran again", s.looked())
	}
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
			if len(requested) != 2 || requested[0]["deadline"] == nil {
				t.Errorf("approval requests %v: want a deadline", requested)
			}
			decided := records(t, h, "approval_decided")
			if len(decided) != 2 {
				t.Fatalf("decisions %v", decided)
			}
			for _, d := range decided {
				if d["by"] != "timeout" || (d["approved"] == true) != onTimeout {
					t.Errorf("decision %v", d)
				}
				mustContain(t, "decision reason", fmt.Sprint(d["reason"]), "no decision within 50ms")
			}
			if onTimeout {
				if got := s.refunded(); len(got) != 3 {
					t.Errorf("refunds %v, want all three", got)
				}
				if got := toolResult(t, res.Messages, "call_0_1"); got != `"refunded 500 on A1"` {
					t.Errorf("result %q", got)
				}
			} else {
				if got := s.refunded(); !slices.Equal(got, []string{"C3:20"}) {
					t.Errorf("refunds %v, want only the small one", got)
				}
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
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_1_0", Approved: true, By: "alice"}); !errors.Is(err, agent.ErrNotPending) {
		t.Fatalf("approve a call not yet made: %v", err)
	}
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_0", Approved: true, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second approval", func() bool {
		p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
		return err == nil && len(p) == 1 && p[0].CallID == "call_1_0" && p[0].Turn == 2
	})
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_1_0", Approved: true, By: "bob"}); err != nil {
		t.Fatal(err)
	}
	e.result(run)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(deleted, []string{"/a", "/b"}) {
		t.Errorf("deleted %v", deleted)
	}
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
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil || len(all) != 1 || all[0].CallID != "call_0_1" {
		info, _ := run.Describe(ctx)
		t.Fatalf("approvals %+v, %v (run status %s): want the refund", all, err, info.Status)
	}
	qs, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindQuestion})
	if err != nil || len(qs) != 1 || qs[0].CallID != "call_0_2" {
		t.Fatalf("questions %+v, %v: want the question", qs, err)
	}
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_2", By: "alice", Text: "yes"}); err != nil {
		t.Fatal(err)
	}
	close(release)
	res := e.result(run)
	if got := toolResult(t, res.Messages, "call_0_0"); got != `"report A1"` {
		t.Errorf("slow result %q", got)
	}
	if got := s.refunded(); !slices.Equal(got, []string{"A1:500"}) {
		t.Errorf("refunds %v", got)
	}
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
	if err := run.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := run.Result(ctx)
	var re *durable.RunError
	if !errors.As(err, &re) || re.Status != backend.StatusCanceled || !errors.Is(err, durable.ErrCanceled) {
		t.Fatalf("result error %v, want canceled", err)
	}
	if p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID}); err != nil || len(p) != 0 {
		t.Errorf("pending after cancel: %v, %v", p, err)
	}
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "alice"}); !errors.Is(err, agent.ErrNotPending) {
		t.Errorf("approve after cancel: %v, want ErrNotPending", err)
	}
	if got := s.refunded(); !slices.Equal(got, []string{"C3:20"}) {
		t.Errorf("refunds %v", got)
	}
	events := follow(t, e, run.ID, "")
	if last := events[len(events)-1]; last.Type != agent.LiveRunFinished || last.Status != backend.StatusCanceled {
		t.Errorf("last event %+v", last)
	}
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
		if err := e.rt.Client().Signal(ctx, run.ID, name, "not an object"); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the bad signals in history", func() bool {
		return countEvents(e.history(run.ID), backend.EventSignalReceived) == 2
	})
	if info, err := run.Describe(ctx); err != nil || info.Status.Terminal() {
		t.Fatalf("run after bad signals: %+v, %v", info, err)
	}
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_0", Approved: true, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_1", By: "alice", Text: "broken"}); err != nil {
		t.Fatal(err)
	}
	if res := e.result(run); res.Text != "Done." {
		t.Fatalf("result %+v", res)
	}
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
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", By: "bob", Reason: "no"}); !errors.Is(err, agent.ErrNotPending) {
		t.Fatalf("second decision: %v, want ErrNotPending", err)
	}
	p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
	if err != nil || len(p) != 1 || p[0].CallID != "call_0_2" {
		t.Fatalf("pending %+v, %v: want only the undecided call", p, err)
	}
	all, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
	if err != nil || len(all) != 1 || all[0].CallID != "call_0_2" {
		t.Fatalf("approvals %+v, %v: want only the undecided call", all, err)
	}
	if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_2", By: "bob", Reason: "no"}); err != nil {
		t.Fatal(err)
	}
	e.start()
	res := e.result(run)
	if got := toolResult(t, res.Messages, "call_0_1"); got != `"refunded 500 on A1"` {
		t.Errorf("approved call result %q", got)
	}
	decided := records(t, e.history(run.ID), "approval_decided")
	if len(decided) != 2 || decided[0]["by"] != "alice" || decided[1]["by"] != "bob" {
		t.Errorf("decisions %v", decided)
	}
}
