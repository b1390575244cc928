package tools_test

import (
	"context"
	"fmt"

	"github.com/cairn-dev/cairn/tools"
)

// RefundArgs are the arguments of the refund tool; the model sees their
// JSON Schema, built from the struct tags.
type RefundArgs struct {
	OrderID string  `json:"order_id" jsonschema:"description=The order to refund"`
	Amount  float64 `json:"amount" jsonschema:"description=Amount in euros,minimum=0"`
	Reason  string  `json:"reason,omitempty" jsonschema:"enum=damaged,enum=late,enum=other,default=other"`
}

// Tools are typed functions; the model's arguments arrive as JSON, are
// checked against the schema, and the result goes back as JSON. Mistakes
// the model makes are explained to it instead of reaching the function.
func Example() {
	// snippet:tools
	refund := tools.MustNew("refund", "Refund an order.",
		func(ctx context.Context, in RefundArgs) (string, error) {
			return fmt.Sprintf("refunded %.2f on %s (%s)", in.Amount, in.OrderID, in.Reason), nil
		},
		// Refunds over 100 wait for a human.
		tools.RequireApprovalIf(func(in RefundArgs) bool { return in.Amount > 100 }),
	)
	status := tools.MustNew("order_status", "Look up an order's status.",
		func(ctx context.Context, in struct {
			OrderID string `json:"order_id"`
		}) (map[string]string, error) {
			return map[string]string{"order_id": in.OrderID, "status": "shipped"}, nil
		},
	)
	set, err := tools.NewNamedSet("support", refund, status)
	if err != nil {
		panic(err)
	}
	for _, d := range set.Definitions() {
		fmt.Printf("%s: %s\n", d.Name, d.Description)
	}
	// end snippet:tools

	ctx := context.Background()
	calls := []struct{ name, args string }{
		{"order_status", `{"order_id":"o-7"}`},
		{"refund", `{"order_id":"o-7","amount":25}`},
		{"refund", `{"order_id":"o-7","amount":"25"}`},
		{"cancel", `{}`},
	}
	for _, c := range calls {
		t, _ := set.Lookup(c.name)
		if t != nil {
			need, _ := t.NeedsApproval([]byte(c.args))
			fmt.Println("needs approval:", need)
		}
		r, err := set.Call(ctx, c.name, []byte(c.args))
		fmt.Printf("error=%v %s\n", r.IsError, r.Content)
		if err != nil {
			fmt.Println("stop or retry:", err)
		}
	}
	big, _ := refund.NeedsApproval([]byte(`{"order_id":"o-8","amount":250}`))
	fmt.Println("refund of 250 needs approval:", big)
	// Output:
	// refund: Refund an order.
	// order_status: Look up an order's status.
	// needs approval: false
	// error=false {"order_id":"o-7","status":"shipped"}
	// needs approval: false
	// error=false "refunded 25.00 on o-7 (other)"
	// needs approval: false
	// error=true invalid arguments for tool "refund":
	// - at /amount: got string, want number
	// Fix the arguments and call the tool again.
	// error=true unknown tool "cancel"; available tools: refund, order_status
	// refund of 250 needs approval: true
}

// A tool that changes an outside system passes the call's idempotency key
// on, so that a retried call does not repeat the change. The layer that
// runs tools sets the key; in a durable activity it defaults to the
// activity's key.
func ExampleIdempotencyKey() {
	charge := tools.MustNew("charge", "Charge a card.",
		func(ctx context.Context, in struct {
			Cents int `json:"cents"`
		}) (string, error) {
			key, ok := tools.IdempotencyKey(ctx)
			if !ok {
				return "", tools.Fatal(fmt.Errorf("charge without an idempotency key"))
			}
			return fmt.Sprintf("charged %d with Idempotency-Key %s", in.Cents, key), nil
		},
		tools.HonorsIdempotencyKey(),
	)
	ctx := tools.WithIdempotencyKey(context.Background(), "run-42/call_1")
	r, err := charge.Call(ctx, []byte(`{"cents":1299}`))
	fmt.Println(r.Content, err)

	_, err = charge.Call(context.Background(), []byte(`{"cents":1299}`))
	fmt.Println(tools.IsFatal(err), err)
	// Output:
	// "charged 1299 with Idempotency-Key run-42/call_1" <nil>
	// true tool charge: fatal: charge without an idempotency key
}

// A tool that needs a person's answer does not wait for it inside its
// call: it returns NeedInput, and its caller (an agent run, durably) asks,
// then calls it again with the response in its context.
func ExampleNeedInput() {
	confirm := tools.MustNew("cancel_order", "Cancel an order, once its owner confirms.",
		func(ctx context.Context, in struct {
			OrderID string `json:"order_id"`
		}) (string, error) {
			input, _ := tools.InputFrom(ctx)
			r, ok := input.Response("confirm")
			if !ok {
				return "", tools.NeedInput("", tools.InputRequest{ID: "confirm", Kind: tools.InputElicitation,
					Message: "Cancel order " + in.OrderID + "?",
					Schema:  []byte(`{"type":"object","properties":{"sure":{"type":"boolean"}},"required":["sure"]}`)})
			}
			if r.Action != tools.ActionAccept || string(r.Content) != `{"sure":true}` {
				return "kept " + in.OrderID, nil
			}
			return "canceled " + in.OrderID, nil
		})
	args := []byte(`{"order_id":"A-1"}`)
	_, err := confirm.Call(context.Background(), args)
	need, _ := tools.AsNeedsInput(err)
	q := need.Requests[0]
	fmt.Println("asks:", q.Message)
	fmt.Println("a bad answer:", q.CheckAnswer(tools.ActionAccept, []byte(`{"sure":"yes"}`)) != nil)

	ctx := tools.WithInput(context.Background(), tools.Input{State: need.State, Responses: []tools.InputResponse{
		{ID: q.ID, Action: tools.ActionAccept, Content: []byte(`{"sure":true}`), By: "ann"}}})
	res, _ := confirm.Call(ctx, args)
	fmt.Println(res.Content)
	// Output:
	// asks: Cancel order A-1?
	// a bad answer: true
	// "canceled A-1"
}
