package agent_test

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"slices"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// An agent with a tool, run as a durable workflow: the model call and the
// tool call are activities journaled in the run's history.
func Example() {
	type lookupArgs struct {
		Order string `json:"order" jsonschema:"description=the order number"`
	}
	lookup := tools.MustNew("lookup_order", "Find an order by its number.",
		func(ctx context.Context, in lookupArgs) (string, error) {
			return "order " + in.Order + " shipped on Monday", nil
		})
	set, err := tools.NewSet(lookup)
	if err != nil {
		log.Fatal(err)
	}
	support := &agent.Agent{
		Name:         "support",
		Instructions: "You help customers with their orders.",
		// A scripted model plays the model's part; use providers/openai
		// for a real one.
		Model: scripted.New(
			providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
				{Name: "lookup_order", Arguments: `{"order":"A-17"}`}}}},
			providers.Response{Message: providers.Message{Content: "Your order A-17 shipped on Monday."}},
		),
		Tools: set,
	}

	// The runtime binds agents to a store: memory here, Redis in
	// production (durable/redis).
	rt := agent.NewRuntime(inmem.New(), agent.Options{})
	if err := rt.Register(support); err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	worker := rt.NewWorker(durable.WorkerOptions{})
	go worker.Run(ctx)

	run, err := rt.Start(ctx, support, "ticket-1", agent.Input{Message: "Where is my order A-17?"})
	if err != nil {
		log.Fatal(err)
	}
	res, err := run.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Text)
	fmt.Println("turns:", res.Turns)
	// Output:
	// Your order A-17 shipped on Monday.
	// turns: 2
}

// A tool that needs a person's approval pauses the run, which holds no
// worker while it waits; an approval from any process resumes it.
func ExampleRuntime_Decide() {
	type refundArgs struct {
		Amount int `json:"amount"`
	}
	refund := tools.MustNew("refund", "Refund the customer.",
		func(ctx context.Context, in refundArgs) (string, error) {
			return fmt.Sprintf("refunded %d", in.Amount), nil
		},
		tools.RequireApprovalIf(func(in refundArgs) bool { return in.Amount > 50 }))
	set, _ := tools.NewSet(refund)
	support := &agent.Agent{
		Name: "refunds",
		Model: scripted.New(
			providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
				{Name: "refund", Arguments: `{"amount":120}`}}}},
			providers.Response{Message: providers.Message{Content: "Refunded 120."}},
		),
		Tools: set,
	}
	store := inmem.New()
	rt := agent.NewRuntime(store, agent.Options{})
	if err := rt.Register(support); err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go rt.NewWorker(durable.WorkerOptions{}).Run(ctx)

	run, err := rt.Start(ctx, support, "refund-1", agent.Input{Message: "Refund me 120, please."})
	if err != nil {
		log.Fatal(err)
	}
	var pending []agent.PendingCall
	for len(pending) == 0 { // the run gets there in a moment
		pending, err = rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
		if err != nil {
			log.Fatal(err)
		}
	}
	p := pending[0]
	fmt.Println("pending:", p.Tool, p.Arguments)
	if err := rt.Decide(ctx, p.RunID, agent.Decision{CallID: p.CallID, Approved: true, By: "alice@example.com", Reason: "receipt checked"}); err != nil {
		log.Fatal(err)
	}
	res, err := run.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Text)
	// Output:
	// pending: refund {"amount":120}
	// Refunded 120.
}

// A run traced with OpenTelemetry: one trace under the caller's span, a
// span for the run, for each model call and for each tool call, with ids
// derived from the run's steps (IDGenerator), whichever worker reports
// them. Here the spans go to an in-memory exporter; in production, to an
// OTLP exporter (go.opentelemetry.io/otel/exporters/otlp/otlptrace).
func Example_tracing() {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans), sdktrace.WithIDGenerator(durable.IDGenerator{}))

	type cityArgs struct {
		City string `json:"city"`
	}
	weather := tools.MustNew("weather", "The weather in a city.", func(ctx context.Context, in cityArgs) (string, error) {
		return "sunny in " + in.City, nil
	})
	set, err := tools.NewSet(weather)
	if err != nil {
		log.Fatal(err)
	}
	forecaster := &agent.Agent{Name: "forecaster", Tools: set, Model: scripted.New(
		providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
			{Name: "weather", Arguments: `{"city":"Lyon"}`}}}},
		providers.Response{Message: providers.Message{Content: "Sunny in Lyon."}},
	)}
	rt := agent.NewRuntime(inmem.New(), agent.Options{TracerProvider: tp})
	if err := rt.Register(forecaster); err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go rt.NewWorker(durable.WorkerOptions{}).Run(ctx)

	// The caller's span becomes the run's parent.
	callerCtx, caller := tp.Tracer("example").Start(ctx, "handle request")
	run, err := rt.Start(callerCtx, forecaster, "forecast-1", agent.Input{Message: "Weather in Lyon?"})
	if err != nil {
		log.Fatal(err)
	}
	caller.End()
	if _, err := run.Result(ctx); err != nil {
		log.Fatal(err)
	}
	// The run's span is emitted right after its last commit.
	for !slices.ContainsFunc(spans.GetSpans(), func(s tracetest.SpanStub) bool { return s.Name == "invoke_agent forecaster" }) {
		time.Sleep(time.Millisecond)
	}

	got := spans.GetSpans()
	names := map[trace.SpanID]string{}
	for _, s := range got {
		names[s.SpanContext.SpanID()] = s.Name
	}
	// By start; of two that start together, the one that encloses the
	// other first.
	slices.SortFunc(got, func(a, b tracetest.SpanStub) int {
		return cmp.Or(a.StartTime.Compare(b.StartTime), b.EndTime.Compare(a.EndTime))
	})
	for _, s := range got {
		if parent := names[s.Parent.SpanID()]; parent != "" {
			fmt.Printf("%-24s under %s\n", s.Name, parent)
		}
	}
	// Output:
	// invoke_agent forecaster  under handle request
	// chat scripted            under invoke_agent forecaster
	// execute_tool weather     under invoke_agent forecaster
	// chat scripted            under invoke_agent forecaster
}
