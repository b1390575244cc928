package scripted_test

import (
	"context"
	"fmt"

	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// A script of two turns: a tool call, then the answer. The model picks the
// response by the conversation's turn, so it answers the same way after a
// retry or a restart.
func Example() {
	model := scripted.New(
		providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
			{Name: "get_weather", Arguments: `{"city":"Paris"}`},
		}}},
		providers.Response{Message: providers.Message{Content: "It is 18°C in Paris."}},
	)
	ctx := context.Background()
	req := providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Weather in Paris?"}}}
	for {
		resp, err := model.Generate(ctx, req)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(resp.ID, resp.FinishReason, resp.Usage.TotalTokens, "tokens")
		req.Messages = append(req.Messages, resp.Message)
		if len(resp.Message.ToolCalls) == 0 {
			fmt.Println(resp.Message.Content)
			break
		}
		for _, c := range resp.Message.ToolCalls {
			fmt.Println(" ", c.ID, c.Name, c.Arguments)
			req.Messages = append(req.Messages, providers.Message{Role: providers.RoleTool, ToolCallID: c.ID, Content: `{"temp_c":18}`})
		}
	}
	// The script has no third turn.
	req.Messages = append(req.Messages, providers.Message{Role: providers.RoleUser, Content: "And tomorrow?"})
	_, err := model.Generate(ctx, req)
	fmt.Println(err)
	// Output:
	// scripted-0 tool_calls 12 tokens
	//   call_0_0 get_weather {"city":"Paris"}
	// scripted-1 stop 21 tokens
	// It is 18°C in Paris.
	// scripted: turn 2 of a script of 2: script exhausted
}

// Streaming splits the text into words and tool-call arguments into small
// pieces, as a real model's stream would.
func ExampleModel_Stream() {
	model := scripted.New(providers.Response{Message: providers.Message{Content: "Hello, streaming world."}})
	resp, err := model.Stream(context.Background(), providers.Request{}, func(d providers.Delta) error {
		fmt.Printf("%q\n", d.Text)
		return nil
	})
	fmt.Println(resp.Message.Content, err)
	// Output:
	// "Hello, "
	// "streaming "
	// "world."
	// Hello, streaming world. <nil>
}

// Func computes each response from the request.
func ExampleFunc() {
	echo := scripted.Func(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		last := req.Messages[len(req.Messages)-1]
		return providers.Response{Message: providers.Message{Content: "you said: " + last.Content}}, nil
	})
	resp, _ := echo.Generate(context.Background(), providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "hi"}}})
	fmt.Println(resp.Message.Content)
	// Output: you said: hi
}
