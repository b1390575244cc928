package support

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// Scripted is the model of the example when there is no API key. It
// plays what a real model would do with the customer's message: look the
// order up, refund it in full, and answer from what the refund tool said;
// approved, that is the refund's id, rejected, the approver's reason.
func Scripted() providers.Model {
	return scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		switch turn := scripted.Turn(req); turn {
		case 0:
			return say("Let me look that order up.", callTool("lookup_order", LookupArgs{OrderID: "A-1001"})), nil
		case 1:
			return say("It arrived late and cold: I'm refunding it in full.", callTool("refund",
				RefundArgs{OrderID: "A-1001", Amount: 120, Reason: "delivered 50 minutes late, cold"})), nil
		case 2:
			last := req.Messages[len(req.Messages)-1].Content
			var done RefundDone
			if json.Unmarshal([]byte(last), &done) != nil || done.RefundID == "" {
				// The tool did not run: its result says who rejected
				// it and why.
				return say("I'm sorry, I couldn't refund your order: " + last), nil
			}
			return say(fmt.Sprintf("I've refunded %.2f euros to your card (refund %s). Sorry about the cold pizza!",
				done.Amount, done.RefundID)), nil
		default:
			return providers.Response{}, durable.NonRetryable(fmt.Errorf("the script has no turn %d", turn))
		}
	})
}

// say is a model answer: text, tool calls, or both. The scripted model
// gives the calls their ids.
func say(text string, calls ...providers.ToolCall) providers.Response {
	return providers.Response{Message: providers.Message{Content: text, ToolCalls: calls}}
}

// callTool is a tool call with arguments encoded as a model writes them.
func callTool(name string, args any) providers.ToolCall {
	data, err := json.Marshal(args)
	if err != nil {
		panic(err)
	}
	return providers.ToolCall{Name: name, Arguments: string(data)}
}
