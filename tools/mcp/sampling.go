package mcp

import (
	"cmp"
	"context"
	"fmt"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/providers"
)

// sample answers a server's sampling/createMessage request with model:
// the request's messages (text; other content as references, as Render
// shows them), its system prompt, token cap, temperature and stop
// sequences become a providers.Request.
func sample(ctx context.Context, model providers.Model, req *sdk.CreateMessageRequest) (*sdk.CreateMessageResult, error) {
	if req == nil || req.Params == nil {
		return nil, fmt.Errorf("sampling: no parameters")
	}
	p := req.Params
	r := providers.Request{System: p.SystemPrompt}
	r.Settings.MaxTokens = int(p.MaxTokens)
	r.Settings.Stop = p.StopSequences
	if p.Temperature != 0 {
		t := p.Temperature
		r.Settings.Temperature = &t
	}
	for _, m := range p.Messages {
		if m == nil {
			continue
		}
		role := providers.RoleUser
		if m.Role == "assistant" {
			role = providers.RoleAssistant
		}
		text := Render(&sdk.CallToolResult{Content: []sdk.Content{m.Content}}).Content
		r.Messages = append(r.Messages, providers.Message{Role: role, Content: text})
	}
	if len(r.Messages) == 0 {
		return nil, fmt.Errorf("sampling: no messages")
	}
	resp, err := model.Generate(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("sampling: %w", err)
	}
	stop := "endTurn"
	switch resp.FinishReason {
	case providers.FinishLength:
		stop = "maxTokens"
	case providers.FinishStop, "":
	default:
		stop = string(resp.FinishReason)
	}
	return &sdk.CreateMessageResult{Content: &sdk.TextContent{Text: resp.Message.Content},
		Model: cmp.Or(resp.Model, "unknown"), Role: "assistant", StopReason: stop}, nil
}
