package evals_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/evals"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// A support agent evaluated on a case: each trial is a real durable run
// on an in-memory store; the order lookup comes from a fixture, the
// refund's approval from a scripted rule, and the trajectory matches the
// ticket id the model makes up with a pattern.
func Example() {
	lookup := tools.MustNew("lookup_order", "Find an order by its id.",
		func(ctx context.Context, a struct {
			OrderID string `json:"order_id"`
		}) (string, error) {
			return "", fmt.Errorf("the order service is not reachable from tests")
		})
	refund := tools.MustNew("refund", "Refund an order, in cents.",
		func(ctx context.Context, a struct {
			OrderID  string `json:"order_id"`
			Cents    int    `json:"cents"`
			TicketID string `json:"ticket_id"`
		}) (string, error) {
			return fmt.Sprintf("refunded %d cents", a.Cents), nil
		}, tools.RequireApproval(), tools.HonorsIdempotencyKey())
	shop, err := tools.NewSet(lookup, refund)
	if err != nil {
		log.Fatal(err)
	}
	call := func(name, args string) providers.Response {
		return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{Name: name, Arguments: args}}}}
	}
	support := &agent.Agent{
		Name: "support",
		Model: scripted.New(
			call("lookup_order", `{"order_id":"A-1001"}`),
			call("refund", `{"order_id":"A-1001","cents":12000,"ticket_id":"T-93731"}`),
			providers.Response{Message: providers.Message{Content: "I've refunded your 120 euros."}},
		),
		Tools: shop,
	}

	eq := func(v string) evals.Matcher { return evals.Matcher{Equal: json.RawMessage(v)} }
	runner := &evals.Runner{Agent: support, Trials: 2}
	report, err := runner.Run(context.Background(), []evals.Case{{
		Name:      "cold pizza",
		Message:   "My pizza came cold; refund my 120 euros.",
		Fixtures:  []evals.Fixture{{Tool: "lookup_order", Result: `"order A-1001: 120 euros, delivered cold"`}},
		Approvals: []evals.Approval{{Tool: "refund", Approved: true, By: "alice", Reason: "receipt checked"}},
		Expect: evals.Expect{
			Contains: []string{"120 euros"},
			Trajectory: &evals.Trajectory{Mode: evals.TrajectoryExact, Calls: []evals.ExpectedCall{
				{Tool: "lookup_order", Args: map[string]evals.Matcher{"order_id": eq(`"A-1001"`)}},
				{Tool: "refund", Args: map[string]evals.Matcher{"cents": eq(`12000`), "ticket_id": {Regex: `^T-\d+$`}}},
			}},
			Budget: &evals.Budget{Turns: 3},
		},
	}})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range report.Cases {
		fmt.Printf("%s: %s, pass rate %.0f%%\n", c.Name, c.Status, 100*c.PassRate)
		for _, g := range c.Trials[0].Grades {
			fmt.Printf("  %s %.2f %s\n", g.Grader, g.Value, g.Label)
		}
		fmt.Println(" ", c.Trials[0].Calls[0].Result)
	}
	// Output:
	// cold pizza: pass, pass rate 100%
	//   contains 1.00 pass
	//   trajectory 1.00 pass
	//   budget 1.00 pass
	//   "order A-1001: 120 euros, delivered cold"
}
