package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// scriptedWaiter is the model of the example when there is no API key: it
// plays the conversation a real model would, one turn per request. Like a
// real model it reads the conversation it is sent: the order id and price
// it uses come from take_order's result. It answers the same request the
// same way every time, so a run taken over after a crash goes on as it
// would have.
func scriptedWaiter() providers.Model {
	return scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		order := takenOrderIn(req.Messages)
		switch turn := scripted.Turn(req); turn {
		case 0:
			return say("Let me put your order in.",
				callTool("take_order", takeOrderArgs{Pizza: "margherita", Size: "large", Address: "12 Via Roma"})), nil
		case 1:
			return say("", callTool("prepare_pizza", orderArgs{OrderID: order.OrderID})), nil
		case 2:
			return say("", callTool(waitTool, orderArgs{OrderID: order.OrderID})), nil
		case 3:
			// Two calls in one turn: they run in parallel, and are
			// journaled by call, so replay does not care which
			// finished first.
			return say("",
				callTool("deliver_pizza", deliveryArgs{OrderID: order.OrderID, Address: "12 Via Roma"}),
				callTool("send_receipt", receiptArgs{OrderID: order.OrderID, Email: "ada@example.com"})), nil
		case 4:
			return say(fmt.Sprintf("Your large margherita (order %s, %d euros) is on its way to 12 Via Roma, "+
				"and the receipt is in your inbox. Enjoy!", order.OrderID, order.PriceEuros)), nil
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

// takenOrderIn finds take_order's result in a conversation: the tool
// message that answers the first tool call.
func takenOrderIn(messages []providers.Message) takenOrder {
	var order takenOrder
	for _, m := range messages {
		if m.Role == providers.RoleTool && json.Unmarshal([]byte(m.Content), &order) == nil && order.OrderID != "" {
			break
		}
	}
	return order
}
