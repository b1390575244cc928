package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/examples/internal/support"
	"github.com/cairn-dev/cairn/internal/otlptest"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/internal/spantree"
	"github.com/cairn-dev/cairn/internal/syncbuf"
)

func TestApproveAutomatically(t *testing.T) {
	got, err := runExample(t, config{as: manager})
	require.NoError(t, err, "run:\n%s", got)
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
	assert.Equal(t, 1, strings.Count(got, "[payments]"), "refunds:\n%s", got)
}

func TestPromptReject(t *testing.T) {
	got, err := runExample(t, config{prompt: true, as: manager, in: strings.NewReader("n\nover the budget\n")})
	require.NoError(t, err, "run:\n%s", got)
	inOrder(t, got, "Approve refund", "[y/N]", "Reason:", "alice@example.com rejected it: over the budget",
		"support: I'm sorry, I couldn't refund your order: The call was rejected by alice@example.com: over the budget",
		"Refunds made by this process: 0", "approval_decided", "run_completed")
	assert.NotContains(t, got, "[payments]", "a rejected refund ran")
	assert.NotContains(t, got, "tool:support/refund", "a rejected refund ran")
}

func TestPromptRefusesWhoMayNot(t *testing.T) {
	got, err := runExample(t, config{prompt: true, as: customer, in: strings.NewReader("y\nplease\n")})
	require.ErrorIs(t, err, agent.ErrNotAuthorized, "run:\n%s", got)
	assert.NotContains(t, got, "[payments]", "refunded on the word of %s", customer)
}

// TestApprovalWithNoWorker runs the approval on Redis as three processes
// would: a worker that stops while the run awaits approval, a back office
// that approves with no worker running, and a new worker that finishes the
// run, making the refund once.
func TestApprovalWithNoWorker(t *testing.T) {
	store, err := redis.Open(redistest.Start(t).URL())
	require.NoError(t, err)
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	pay := support.NewPayments(&out) // the payment provider, outside every process

	// The first worker takes the run to its approval, and stops.
	rt, support := service(t, store, pay)
	stop := startWorker(ctx, rt)
	run, err := rt.Start(ctx, support, runID, agent.Input{Message: complaint})
	require.NoError(t, err)
	backOffice := agent.NewRuntime(store, agent.Options{Authorizer: onlyManagers(manager)})
	req, ok, err := nextApproval(ctx, backOffice, runID, nil)
	require.NoError(t, err, "no approval")
	require.True(t, ok, "no approval")
	stop()

	// The back office decides with no worker running: the decision
	// waits in the run's inbox.
	require.NoError(t, tryAs(ctx, &out, backOffice, req, customer))
	require.NoError(t, backOffice.Decide(ctx, runID, agent.Decision{CallID: req.CallID, Approved: true, By: manager, Reason: "fair"}))
	time.Sleep(50 * time.Millisecond)
	info, err := run.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, backend.StatusAwaitingApproval, info.Status, "with no worker the run")
	require.Zero(t, pay.Count(), "refunded with no worker running")

	// A new worker, in what could be a new process, finishes the run.
	rt2, _ := service(t, store, pay)
	defer startWorker(ctx, rt2)()
	res, err := rt2.Run(runID).Result(ctx)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(res.Text, "I've refunded 120.00 euros"), "answer %q\n%s", res.Text, out.String())
	require.Equal(t, 1, pay.Count(), "refunds\n%s", out.String())
	history, err := run.History(ctx)
	require.NoError(t, err)
	var timeline bytes.Buffer
	require.NoError(t, durable.WriteTimeline(&timeline, history))
	inOrder(t, timeline.String(), "approval_requested", "from alice@example.com", "approval_decided",
		"tool:support/refund", "run_completed")
	assert.NotContains(t, timeline.String(), customer, "the refused approver reached the run")
}

// service is what a process that runs the agent sets up.
func service(t *testing.T, store backend.Store, pay *support.Payments) (*agent.Runtime, *agent.Agent) {
	t.Helper()
	support := support.NewAgent(support.Scripted(), pay)
	rt := agent.NewRuntime(store, agent.Options{Authorizer: onlyManagers(manager)})
	require.NoError(t, rt.Register(support))
	return rt, support
}

// runExample runs the example with the in-memory store and the scripted
// model, and returns what it wrote.
func runExample(t *testing.T, cfg config) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	err := run(ctx, &out, inmem.New(), support.Scripted(), cfg)
	return out.String(), err
}

// inOrder checks that got holds each of want, in order.
func inOrder(t *testing.T, got string, want ...string) {
	t.Helper()
	rest := got
	for _, w := range want {
		require.Contains(t, rest, w, "output lacks %q after what came before:\n%s", w, got)
		rest = rest[strings.Index(rest, w)+len(w):]
	}
}

func TestTrace(t *testing.T) {
	got, err := runExample(t, config{as: manager, trace: true})
	require.NoError(t, err, "run:\n%s", got)
	_, tree, ok := strings.Cut(got, "\nTrace:\n")
	require.True(t, ok, "no trace:\n%s", got)
	inOrder(t, tree, "handle request", "invoke_agent support", "chat", "execute_tool lookup_order", "chat",
		"await_approval refund [step", "approved by alice@example.com", "execute_tool refund", "chat")
	assert.NoError(t, spantree.CheckOnce(tree), "%s", tree)
}

// TestTraceExported runs the example with OTEL_EXPORTER_OTLP_ENDPOINT
// set: the run's spans reach the collector, under the example's own span.
func TestTraceExported(t *testing.T) {
	otlptest.ClearEnv(t)
	recv := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
	got, err := runExample(t, config{as: manager})
	require.NoError(t, err, "run:\n%s", got)
	// The example has shut its provider down: everything is sent.
	spans := recv.Spans()
	byName := map[string]otlptest.Span{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	req, run := byName["handle request"], byName["invoke_agent support"]
	require.NotEmpty(t, req.SpanID, "received %d spans without handle request: %v", len(spans), spans)
	require.NotEmpty(t, run.SpanID, "received %d spans without invoke_agent support: %v", len(spans), spans)
	assert.Equal(t, req.SpanID, run.ParentSpanID, "invoke_agent's parent, want handle request")
	assert.Equal(t, req.TraceID, run.TraceID, "invoke_agent's trace, want handle request's")
	assert.Equal(t, "cairn-example-approval", run.Resource["service.name"], "service.name")
	for _, name := range []string{"execute_tool lookup_order", "await_approval refund", "execute_tool refund"} {
		if assert.Contains(t, byName, name, "span %s not received", name) {
			assert.Equal(t, run.SpanID, byName[name].ParentSpanID, "%s: parent, want under invoke_agent", name)
		}
	}
}

// TestMetricsExported: the example's metrics reach the collector too,
// under the service OTEL_SERVICE_NAME names, which wins over the
// example's own name.
func TestMetricsExported(t *testing.T) {
	otlptest.ClearEnv(t)
	recv := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
	t.Setenv("OTEL_SERVICE_NAME", "refund-desk")
	got, err := runExample(t, config{as: manager})
	require.NoError(t, err, "run:\n%s", got)
	require.Empty(t, recv.Errors(), "rejected requests")
	byName := map[string]otlptest.Metric{}
	for _, m := range recv.Metrics() {
		byName[m.Name] = m
	}
	runs, wait := byName["cairn.runs"], byName["cairn.approval.wait"]
	require.NotEmpty(t, runs.Name, "cairn.runs not received among %d metrics", len(byName))
	assert.Equal(t, "{run}", runs.Unit)
	assert.Equal(t, "refund-desk", runs.Resource["service.name"], "service.name: OTEL_SERVICE_NAME's")
	require.NotEmpty(t, runs.Points)
	assert.Equal(t, "completed", runs.Points[0].Attributes["cairn.run.status"])
	require.NotEmpty(t, wait.Name, "cairn.approval.wait not received")
	assert.Equal(t, "s", wait.Unit)
	require.Len(t, wait.Points, 1)
	assert.Equal(t, uint64(1), wait.Points[0].Count)
	assert.Equal(t, true, wait.Points[0].Attributes["cairn.approval.approved"])
	for _, s := range recv.Spans() {
		assert.Equal(t, "refund-desk", s.Resource["service.name"], "span %s: service.name", s.Name)
	}
}

// TestServe: with -serve the example decides nothing; the decision comes
// from another process (here the test, as cmd/cairn would send it) and the
// example finishes the run.
func TestServe(t *testing.T) {
	store, err := redis.Open(redistest.Start(t).URL())
	require.NoError(t, err)
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, &out, store, support.Scripted(), config{as: manager, serve: true}) }()

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
	require.NoError(t, err, "no approval")
	require.True(t, ok, "no approval")
	require.NoError(t, operator.Decide(ctx, runID, agent.Decision{CallID: req.CallID, Approved: true, By: manager, Reason: "from the command line"}))
	require.NoError(t, <-done)
	got := out.String()
	for _, want := range []string{"cairn approve " + runID + " <CALL> --by " + manager, "I've refunded 120.00 euros"} {
		assert.Contains(t, got, want, "output")
	}
}
