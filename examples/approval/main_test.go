package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/memory"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/otlptest"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/internal/spantree"
	"github.com/cairn-dev/cairn/internal/syncbuf"
)

func TestApproveAutomatically(t *testing.T) {
	got, err := runExample(t, config{as: manager})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, got)
	}
	inOrder(t, got,
		"Run refund-1 is awaiting_approval",
		"Pending approval", "run:       refund-1", "tool:      refund", `"amount":120`,
		"bob@example.com tries to approve it: refused", "not authorized",
		"alice@example.com approved it",
		"[payments] refund R-", "120.00 EUR for order A-1001",
		"support: I've refunded 120.00 euros to your card (refund R-",
		"Refunds made by this process: 1",
		"Workflow History", "approval_requested", "signal_received", "from alice@example.com",
		"approval_decided", "tool:support/refund", "run_completed")
	if n := strings.Count(got, "[payments]"); n != 1 {
		t.Errorf("%d refunds, want 1:\n%s", n, got)
	}
}

func TestPromptReject(t *testing.T) {
	got, err := runExample(t, config{prompt: true, as: manager, in: strings.NewReader("n\nover the budget\n")})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, got)
	}
	inOrder(t, got, "Approve refund", "[y/N]", "Reason:", "alice@example.com rejected it: over the budget",
		"support: I'm sorry, I couldn't refund your order: The call was rejected by alice@example.com: over the budget",
		"Refunds made by this process: 0", "approval_decided", "run_completed")
	if strings.Contains(got, "[payments]") || strings.Contains(got, "tool:support/refund") {
		t.Errorf("a rejected refund ran:\n%s", got)
	}
}

func TestPromptRefusesWhoMayNot(t *testing.T) {
	got, err := runExample(t, config{prompt: true, as: customer, in: strings.NewReader("y\nplease\n")})
	if !errors.Is(err, agent.ErrNotAuthorized) {
		t.Fatalf("run: %v, want agent.ErrNotAuthorized\n%s", err, got)
	}
	if strings.Contains(got, "[payments]") {
		t.Errorf("refunded on the word of %s:\n%s", customer, got)
	}
}

// TestApprovalWithNoWorker runs the approval on Redis as three processes
// would: a worker that stops while the run awaits approval, a back office
// that approves with no worker running, and a new worker that finishes the
// run, making the refund once.
func TestApprovalWithNoWorker(t *testing.T) {
	store, err := redis.Open(redistest.Start(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	pay := newPayments(&out) // the payment provider, outside every process

	// The first worker takes the run to its approval, and stops.
	rt, support := service(t, store, pay)
	stop := startWorker(ctx, rt)
	run, err := rt.Start(ctx, support, runID, agent.Input{Message: complaint})
	if err != nil {
		t.Fatal(err)
	}
	backOffice := agent.NewRuntime(store, agent.Options{Authorizer: onlyManagers(manager)})
	req, ok, err := nextApproval(ctx, backOffice, runID, nil)
	if err != nil || !ok {
		t.Fatalf("no approval: %v, %v", ok, err)
	}
	stop()

	// The back office decides with no worker running: the decision
	// waits in the run's inbox.
	if err := tryAs(ctx, &out, backOffice, req, customer); err != nil {
		t.Fatal(err)
	}
	if err := backOffice.Decide(ctx, runID, agent.Decision{CallID: req.CallID, Approved: true, By: manager, Reason: "fair"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if info, err := run.Describe(ctx); err != nil || info.Status != backend.StatusAwaitingApproval {
		t.Fatalf("with no worker the run is %s (%v), want %s", info.Status, err, backend.StatusAwaitingApproval)
	}
	if pay.count() != 0 {
		t.Fatal("refunded with no worker running")
	}

	// A new worker, in what could be a new process, finishes the run.
	rt2, _ := service(t, store, pay)
	defer startWorker(ctx, rt2)()
	res, err := rt2.Run(runID).Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Text, "I've refunded 120.00 euros") || pay.count() != 1 {
		t.Fatalf("answer %q after %d refunds\n%s", res.Text, pay.count(), out.String())
	}
	history, err := run.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var timeline bytes.Buffer
	if err := durable.WriteTimeline(&timeline, history); err != nil {
		t.Fatal(err)
	}
	inOrder(t, timeline.String(), "approval_requested", "from alice@example.com", "approval_decided",
		"tool:support/refund", "run_completed")
	if strings.Contains(timeline.String(), customer) {
		t.Errorf("the refused approver reached the run:\n%s", timeline.String())
	}
}

// service is what a process that runs the agent sets up.
func service(t *testing.T, store backend.Store, pay *payments) (*agent.Runtime, *agent.Agent) {
	t.Helper()
	support := newSupportAgent(scriptedSupport(), pay)
	rt := agent.NewRuntime(store, agent.Options{Authorizer: onlyManagers(manager)})
	if err := rt.Register(support); err != nil {
		t.Fatal(err)
	}
	return rt, support
}

// runExample runs the example with the memory store and the scripted
// model, and returns what it wrote.
func runExample(t *testing.T, cfg config) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	err := run(ctx, &out, memory.New(), scriptedSupport(), cfg)
	return out.String(), err
}

// inOrder checks that got holds each of want, in order.
func inOrder(t *testing.T, got string, want ...string) {
	t.Helper()
	rest := got
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("output lacks %q after what came before:\n%s", w, got)
		}
		rest = rest[i+len(w):]
	}
}

func TestTrace(t *testing.T) {
	got, err := runExample(t, config{as: manager, trace: true})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, got)
	}
	_, tree, ok := strings.Cut(got, "\nTrace:\n")
	if !ok {
		t.Fatalf("no trace:\n%s", got)
	}
	inOrder(t, tree, "handle request", "invoke_agent support", "chat", "execute_tool lookup_order", "chat",
		"await_approval refund [step", "approved by alice@example.com", "execute_tool refund", "chat")
	if err := spantree.CheckOnce(tree); err != nil {
		t.Errorf("%v\n%s", err, tree)
	}
}

// TestTraceExported runs the example with OTEL_EXPORTER_OTLP_ENDPOINT
// set: the run's spans reach the collector, under the example's own span.
func TestTraceExported(t *testing.T) {
	recv := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	if got, err := runExample(t, config{as: manager}); err != nil {
		t.Fatalf("run: %v\n%s", err, got)
	}
	// The example has shut its provider down: everything is sent.
	spans := recv.Spans()
	byName := map[string]otlptest.Span{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	req, run := byName["handle request"], byName["invoke_agent support"]
	if req.SpanID == "" || run.SpanID == "" {
		t.Fatalf("received %d spans without handle request and invoke_agent support: %v", len(spans), spans)
	}
	if run.ParentSpanID != req.SpanID || run.TraceID != req.TraceID {
		t.Errorf("invoke_agent's parent is %s/%s, want handle request, %s/%s",
			run.TraceID, run.ParentSpanID, req.TraceID, req.SpanID)
	}
	if got := run.Resource["service.name"]; got != "cairn-example-approval" {
		t.Errorf("service.name = %v, want cairn-example-approval", got)
	}
	for _, name := range []string{"execute_tool lookup_order", "await_approval refund", "execute_tool refund"} {
		if s, ok := byName[name]; !ok || s.ParentSpanID != run.SpanID {
			t.Errorf("%s: received %v with parent %s, want under invoke_agent %s", name, ok, s.ParentSpanID, run.SpanID)
		}
	}
}

// TestServe: with -serve the example decides nothing; the decision comes
// from another process (here the test, as cmd/cairn would send it) and the
// example finishes the run.
func TestServe(t *testing.T) {
	store, err := redis.Open(redistest.Start(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, &out, store, scriptedSupport(), config{as: manager, serve: true}) }()

	operator := agent.NewRuntime(store, agent.Options{})
	for { // until the example has started the run
		if _, err := operator.Run(runID).Describe(ctx); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	req, ok, err := nextApproval(ctx, operator, runID, nil)
	if err != nil || !ok {
		t.Fatalf("no approval: %v, %v", ok, err)
	}
	if err := operator.Decide(ctx, runID, agent.Decision{CallID: req.CallID, Approved: true, By: manager, Reason: "from the command line"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"cairn approve " + runID + " <CALL> --by " + manager, "I've refunded 120.00 euros"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
