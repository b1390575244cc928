// Package support is the support desk of a pizza shop as an agent, shared
// by the examples: examples/approval runs it with a person approving big
// refunds, examples/evals evaluates it.
package support

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// RefundLimit is the largest refund the agent may make on its own; a
// person approves larger ones.
const RefundLimit = 50

// LookupArgs and RefundArgs are the arguments of the tools lookup_order
// and refund.
type (
	LookupArgs struct {
		OrderID string `json:"order_id" jsonschema:"description=The order's id, e.g. A-1001"`
	}
	RefundArgs struct {
		OrderID string  `json:"order_id"`
		Amount  float64 `json:"amount" jsonschema:"description=The amount to refund in euros,exclusiveMinimum=0"`
		Reason  string  `json:"reason" jsonschema:"description=Why, in a few words"`
	}
)

// OrderInfo is lookup_order's result.
type OrderInfo struct {
	OrderID string  `json:"order_id"`
	Items   string  `json:"items"`
	Total   float64 `json:"total"`
	Status  string  `json:"status"`
}

// RefundDone is refund's result.
type RefundDone struct {
	RefundID string  `json:"refund_id"`
	Amount   float64 `json:"amount"`
}

// NewAgent defines the agent "support": it looks orders up (lookup_order,
// which knows the order A-1001) and refunds them (refund, through pay),
// refunds above RefundLimit waiting for a person's approval.
func NewAgent(model providers.Model, pay *Payments) *agent.Agent {
	set, err := tools.NewSet(
		tools.MustNew("lookup_order", "Find an order by its id.",
			func(ctx context.Context, in LookupArgs) (OrderInfo, error) {
				if in.OrderID != "A-1001" {
					return OrderInfo{}, fmt.Errorf("no order %s", in.OrderID) // the model reads this
				}
				return OrderInfo{OrderID: in.OrderID, Items: "2 large pizzas, 1 tiramisu", Total: 120,
					Status: "delivered 50 minutes late, cold"}, nil
			},
			// A lookup changes nothing: calling it again, after a
			// crash, is harmless.
			tools.HonorsIdempotencyKey()),
		tools.MustNew("refund", "Refund an order, fully or in part, to the customer's card.",
			func(ctx context.Context, in RefundArgs) (RefundDone, error) {
				key, ok := tools.IdempotencyKey(ctx)
				if !ok {
					return RefundDone{}, tools.Fatal(errors.New("no idempotency key"))
				}
				id := pay.Refund(key, in.OrderID, in.Amount)
				return RefundDone{RefundID: id, Amount: in.Amount}, nil
			},
			// The approval policy sees the decoded arguments. It
			// must be deterministic: replay evaluates it again.
			tools.RequireApprovalIf(func(in RefundArgs) bool { return in.Amount > RefundLimit }),
			tools.HonorsIdempotencyKey()),
	)
	if err != nil {
		panic(err) // the tools above are fixed: a mistake there is a bug
	}
	return &agent.Agent{
		Name: "support",
		Instructions: fmt.Sprintf("You are the support desk of a pizza shop. Look orders up before acting. "+
			"Refund late or cold orders in full. Refunds above %d euros wait for a manager's approval, "+
			"which the refund tool asks for by itself. Answer the customer in one or two sentences.", RefundLimit),
		Model: model,
		Tools: set,
	}
}

// Payments stands for a payment provider that takes an idempotency key,
// as Stripe and Adyen do: a refund asked for twice with the same key is
// made once. The refund tool passes the key of its call, which is the same
// for every attempt, so a retried or replayed call never pays twice.
type Payments struct {
	out io.Writer

	mu      sync.Mutex
	refunds map[string]string // idempotency key -> refund id
}

// NewPayments returns a payment provider that writes each refund it makes
// to out.
func NewPayments(out io.Writer) *Payments {
	return &Payments{out: out, refunds: map[string]string{}}
}

// Refund refunds amount for an order, once per key, and returns the
// refund's id.
func (p *Payments) Refund(key, orderID string, amount float64) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := p.refunds[key]; ok {
		return id
	}
	sum := sha256.Sum256([]byte(key))
	id := "R-" + hex.EncodeToString(sum[:3])
	p.refunds[key] = id
	fmt.Fprintf(p.out, "  [payments] refund %s: %.2f EUR for order %s\n", id, amount, orderID)
	return id
}

// Count returns how many refunds were made.
func (p *Payments) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.refunds)
}
