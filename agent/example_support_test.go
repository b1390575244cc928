package agent_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/agent/otelsetup"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// This file holds the code README.md quotes (the regions between
// "snippet:" comments); readme_test.go at the module's root checks that
// the README quotes them exactly.

// RefundArgs are the arguments of the refund tool; the model's arguments
// are checked against the JSON Schema derived from them.
type RefundArgs struct {
	OrderID string `json:"order_id" jsonschema:"description=The order's id"`
	Cents   int    `json:"cents" jsonschema:"minimum=1"`
}

// payments stands in for a payment provider that takes idempotency keys.
type payments struct{ refunds map[string]int }

// Refund refunds an order once per idempotency key.
func (p *payments) Refund(ctx context.Context, a RefundArgs) (string, error) {
	key, _ := tools.IdempotencyKey(ctx) // the same on every retry of this call
	if _, done := p.refunds[key]; !done {
		p.refunds[key] = a.Cents
	}
	return fmt.Sprintf("refunded %d.%02d euros on %s", a.Cents/100, a.Cents%100, a.OrderID), nil
}

// supportModel plays the model's part: it looks the order up, refunds it,
// and answers.
func supportModel() providers.Model {
	call := func(name, args string) providers.Response {
		return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{Name: name, Arguments: args}}}}
	}
	return scripted.New(
		call("lookup_order", `{"order_id":"A-1001"}`),
		call("refund", `{"order_id":"A-1001","cents":12000}`),
		providers.Response{Message: providers.Message{Content: "I've refunded your 120 euros. Sorry about the cold pizza!"}},
	)
}

// A support agent whose refunds over 50 euros wait for a manager's
// approval: the run waits, holding no worker, until someone the Authorizer
// allows decides.
func Example_support() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	store := inmem.New() // redis.Open(url) in production
	model := supportModel()
	pay := &payments{refunds: map[string]int{}}
	lookupOrder := tools.MustNew("lookup_order", "Find an order by its id.",
		func(ctx context.Context, a struct {
			OrderID string `json:"order_id"`
		}) (string, error) {
			return "order " + a.OrderID + ": 1 margherita, 120 euros, delivered cold", nil
		})
	managersOnly := agent.AuthorizerFunc(func(ctx context.Context, call agent.PendingCall, by string) error {
		if by != "alice@example.com" {
			return errors.New("only managers approve refunds")
		}
		return nil
	})

	// snippet:agent
	refund := tools.MustNew("refund", "Refund an order, in cents.", pay.Refund,
		tools.RequireApprovalIf(func(a RefundArgs) bool { return a.Cents > 50_00 }), // a person approves big ones
		tools.HonorsIdempotencyKey()) // a retried call refunds once
	shop, err := tools.NewSet(lookupOrder, refund)
	if err != nil {
		log.Fatal(err)
	}
	support := &agent.Agent{
		Name:         "support",
		Instructions: "You help customers with their orders.",
		Model:        model, // openai.New("gpt-4o-mini"), or scripted.New(...) in tests
		Tools:        shop,
	}

	rt := agent.NewRuntime(store, agent.Options{Authorizer: managersOnly})
	if err := rt.Register(support); err != nil {
		log.Fatal(err)
	}
	go rt.NewWorker(durable.WorkerOptions{}).Run(ctx) // as many workers, in as many processes, as you like

	run, err := rt.Start(ctx, support, "ticket-4711", agent.Input{Message: "My pizza came cold; refund my 120 euros."})
	if err != nil {
		log.Fatal(err)
	}
	// end snippet:agent

	waitForApproval(ctx, rt, run.ID)

	// snippet:agent-decide
	pending, err := rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
	if err != nil {
		log.Fatal(err)
	}
	call := pending[0] // {RunID: ticket-4711, CallID: call_1_0, Tool: refund, Arguments: {"order_id":"A-1001","cents":12000}}
	err = rt.Decide(ctx, call.RunID, agent.Decision{CallID: call.CallID, Approved: true, By: "alice@example.com", Reason: "receipt checked"})
	if err != nil {
		log.Fatal(err) // agent.ErrNotAuthorized for someone managersOnly refuses
	}
	res, err := run.Result(ctx) // res.Text, res.Messages, res.Usage
	// end snippet:agent-decide

	fmt.Println(call.Tool, call.Arguments)
	fmt.Println(res.Text, err)
	fmt.Println("refunds made:", len(pay.refunds))
	// Output:
	// refund {"order_id":"A-1001","cents":12000}
	// I've refunded your 120 euros. Sorry about the cold pizza! <nil>
	// refunds made: 1
}

// waitForApproval returns once the run waits for an approval.
func waitForApproval(ctx context.Context, rt *agent.Runtime, runID string) {
	for {
		info, err := rt.Client().Describe(ctx, runID)
		if err != nil {
			log.Fatal(err)
		}
		if info.Status == backend.StatusAwaitingApproval {
			return
		}
		if err := rt.Client().WaitChange(ctx, info); err != nil {
			log.Fatal(err)
		}
	}
}

// tracedSupport is the tracing set-up README.md shows; it is compiled, not
// run, as it exports to the collector the OTEL_EXPORTER_OTLP_* variables
// name (examples/approval runs the same set-up).
func tracedSupport(ctx context.Context, store backend.Store, support *agent.Agent, input agent.Input) (*durable.Run[agent.RunResult], error) {
	// snippet:tracing
	// Traces, metrics and logs, as the OTEL_* variables say; "support" unless OTEL_SERVICE_NAME is set.
	otel, err := otelsetup.FromEnv(ctx, otelsetup.Options{ServiceName: "support"})
	if err != nil {
		return nil, err
	}
	defer otel.Shutdown(context.WithoutCancel(ctx)) // sends what is buffered, once the workers have stopped
	rt := agent.NewRuntime(store, agent.Options{
		TracerProvider: otel.TracerProvider, // built with durable.IDGenerator
		MeterProvider:  otel.MeterProvider,
		Logger:         slog.New(slog.NewMultiHandler(slog.Default().Handler(), otel.LogHandler())),
	})

	ctx, span := otel.TracerProvider.Tracer("support").Start(ctx, "POST /tickets") // the run hangs under this span
	defer span.End()
	run, err := rt.Start(ctx, support, "ticket-4711", input)
	// end snippet:tracing
	return run, err
}
