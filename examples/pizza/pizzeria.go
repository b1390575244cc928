package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// The tools' arguments. Their JSON Schema, which the model reads, comes
// from the struct tags; arguments that break it never reach the tool, and
// the model is told what was wrong.
type (
	takeOrderArgs struct {
		Pizza   string `json:"pizza" jsonschema:"description=The pizza, e.g. margherita"`
		Size    string `json:"size" jsonschema:"enum=small,enum=medium,enum=large"`
		Address string `json:"address" jsonschema:"description=Where to deliver it"`
	}
	orderArgs struct {
		OrderID string `json:"order_id" jsonschema:"description=The id take_order returned"`
	}
	deliveryArgs struct {
		OrderID string `json:"order_id"`
		Address string `json:"address"`
	}
	receiptArgs struct {
		OrderID string `json:"order_id"`
		Email   string `json:"email" jsonschema:"description=The customer's email address"`
	}
)

// takenOrder is take_order's result.
type takenOrder struct {
	OrderID    string `json:"order_id"`
	PriceEuros int    `json:"price_euros"`
}

// waitTool names the workflow tool that waits for the oven.
const waitTool = "wait_for_oven"

// newPizzaAgent defines the agent. Its tools report what they do to out,
// as a real shop's systems would show it; wait is how long a pizza bakes.
func newPizzaAgent(out io.Writer, model providers.Model, wait time.Duration) *agent.Agent {
	shop, err := tools.NewSet(
		tools.MustNew("take_order", "Record a pizza order. Returns the order's id and price.",
			func(ctx context.Context, in takeOrderArgs) (takenOrder, error) {
				// The idempotency key is the same for every attempt
				// of this call, even one made by another worker
				// after a crash: deriving the order id from it
				// means a retry finds the same order, not a second.
				key, _ := tools.IdempotencyKey(ctx)
				id := orderID(key)
				if err := work(ctx); err != nil {
					return takenOrder{}, err
				}
				fmt.Fprintf(out, "  [shop] order %s: %s %s for %s\n", id, in.Size, in.Pizza, in.Address)
				return takenOrder{OrderID: id, PriceEuros: price(in.Size)}, nil
			}, tools.HonorsIdempotencyKey()),
		tools.MustNew("prepare_pizza", "Make the pizza of an order and put it in the oven.",
			func(ctx context.Context, in orderArgs) (string, error) {
				if err := work(ctx); err != nil {
					return "", err
				}
				fmt.Fprintf(out, "  [kitchen] %s: dough stretched, topped, in the oven\n", in.OrderID)
				return "in the oven", nil
			}),
		tools.MustNew("deliver_pizza", "Send the pizza of an order to its address, once it is baked.",
			func(ctx context.Context, in deliveryArgs) (string, error) {
				if err := work(ctx); err != nil {
					return "", err
				}
				fmt.Fprintf(out, "  [courier] %s: delivered to %s\n", in.OrderID, in.Address)
				return "delivered", nil
			}),
		tools.MustNew("send_receipt", "Email the receipt of an order.",
			func(ctx context.Context, in receiptArgs) (string, error) {
				if err := work(ctx); err != nil {
					return "", err
				}
				fmt.Fprintf(out, "  [mail] %s: receipt sent to %s\n", in.OrderID, in.Email)
				return "receipt sent", nil
			}),
	)
	if err != nil {
		panic(err) // the tools above are fixed: a mistake there is a bug
	}

	// A workflow tool's body is workflow code, not an activity: it is
	// replayed after a crash, not run again, so it must be deterministic
	// and do no I/O. durable.Sleep is a durable timer: it lives in the
	// store, and the run holds no worker while it waits. The agent
	// records a workflow tool's start and end in history, which also
	// puts them on the live feed.
	waitForOven := agent.MustNewWorkflowTool(waitTool, "Wait until the pizza of an order is baked.",
		func(ctx durable.Context, in orderArgs) (string, error) {
			if err := durable.Sleep(ctx, wait); err != nil {
				return "", err
			}
			return "baked", nil
		})

	return &agent.Agent{
		Name: "pizza",
		Instructions: "You take pizza orders. For an order: call take_order, then prepare_pizza, " +
			"then wait_for_oven; once it is baked, call deliver_pizza and send_receipt together. " +
			"Then tell the customer, in one or two sentences, the order id, the price and that it is on its way.",
		Model:         model,
		Tools:         shop,
		WorkflowTools: []*agent.WorkflowTool{waitForOven},
	}
}

// work stands for the time the shop's systems take to do their part. A
// tool gets a context that is canceled when its run stops; an attempt cut
// off returns an error and is retried, by this worker or another.
func work(ctx context.Context) error {
	select {
	case <-time.After(100 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// orderID makes a short order id of an idempotency key.
func orderID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "P-" + hex.EncodeToString(sum[:3])
}

func price(size string) int {
	switch size {
	case "small":
		return 7
	case "medium":
		return 9
	}
	return 12
}
