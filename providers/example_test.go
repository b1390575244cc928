package providers_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// A caller that wants tokens as they come uses Stream, which streams when
// the model can and otherwise delivers the whole answer at once.
func ExampleStream() {
	var model providers.Model = scripted.New(providers.Response{Message: providers.Message{Content: "Durable agents, step by step."}})
	_, streams := model.(providers.StreamingModel)
	fmt.Println("streams:", streams)

	req := providers.Request{
		System:   "Answer in one line.",
		Messages: []providers.Message{{Role: providers.RoleUser, Content: "What is cairn?"}},
	}
	var pieces []string
	resp, err := providers.Stream(context.Background(), model, req, func(d providers.Delta) error {
		pieces = append(pieces, fmt.Sprintf("%q", d.Text))
		return nil
	})
	fmt.Println(strings.Join(pieces, " "))
	fmt.Println(resp.Message.Content, resp.FinishReason, err)
	// Output:
	// streams: true
	// "Durable " "agents, " "step " "by " "step."
	// Durable agents, step by step. stop <nil>
}
