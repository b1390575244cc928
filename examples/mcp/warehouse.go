package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// warehouse is the example's MCP server, written with the go-sdk: stock
// looks an item up; count_shelf counts a shelf, reporting its progress;
// reorder asks the operator how many to order (elicitation), then the
// client's model for a note to the supplier (sampling), and orders.
func warehouse() *sdk.Server {
	server := sdk.NewServer(&sdk.Implementation{Name: "warehouse", Version: "1"}, nil)
	type item struct {
		Item string `json:"item" jsonschema:"the item, e.g. blue mug"`
	}
	sdk.AddTool(server, &sdk.Tool{Name: "stock", Description: "How many of an item the warehouse has, and where."},
		func(ctx context.Context, req *sdk.CallToolRequest, in item) (*sdk.CallToolResult, any, error) {
			if !strings.Contains(in.Item, "mug") {
				return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "no such item: " + in.Item}}}, nil, nil
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("%s: 42 on shelf B2", in.Item)}}}, nil, nil
		})
	type shelf struct {
		Shelf string `json:"shelf" jsonschema:"the shelf, e.g. B2"`
	}
	sdk.AddTool(server, &sdk.Tool{Name: "count_shelf", Description: "Count what is on a shelf, box by box."},
		func(ctx context.Context, req *sdk.CallToolRequest, in shelf) (*sdk.CallToolResult, any, error) {
			const boxes = 3
			for i := 1; i <= boxes; i++ {
				time.Sleep(20 * time.Millisecond) // opening a box
				_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(),
					Progress: float64(i), Total: boxes, Message: fmt.Sprintf("box %d of %d", i, boxes)})
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("shelf %s: 41 blue mugs", in.Shelf)}}}, nil, nil
		})
	sdk.AddTool(server, &sdk.Tool{Name: "reorder", Description: "Reorder an item from the supplier; asks the operator how many."}, reorder)
	return server
}

// reorder asks for its input in its results (MCP's multi round-trip
// requests): first the quantity, of the operator; then, with the quantity
// kept in the request state, a note, of the client's model. The client
// ends each round's call there; the agent run gets the input, durably,
// and calls again.
func reorder(ctx context.Context, req *sdk.CallToolRequest, in struct {
	Item string `json:"item" jsonschema:"the item, e.g. blue mug"`
}) (*sdk.CallToolResult, any, error) {
	text := func(format string, args ...any) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf(format, args...)}}}, nil, nil
	}
	if q, ok := req.Params.InputResponses["quantity"].(*sdk.ElicitResult); ok {
		if q.Action != "accept" {
			return text("no %s reordered: the operator chose to %s", in.Item, q.Action)
		}
		n := fmt.Sprint(q.Content["quantity"])
		return &sdk.CallToolResult{RequestState: n, InputRequests: sdk.InputRequestMap{
			"note": &sdk.CreateMessageParams{MaxTokens: 60, SystemPrompt: "You write one-line notes to suppliers.",
				Messages: []*sdk.SamplingMessage{{Role: "user", Content: &sdk.TextContent{Text: "Order " + n + " " + in.Item + "."}}}},
		}}, nil, nil
	}
	var note string
	switch r := req.Params.InputResponses["note"].(type) {
	case *sdk.CreateMessageWithToolsResult:
		if len(r.Content) > 0 {
			if t, ok := r.Content[0].(*sdk.TextContent); ok {
				note = t.Text
			}
		}
	case *sdk.CreateMessageResult:
		if t, ok := r.Content.(*sdk.TextContent); ok {
			note = t.Text
		}
	}
	if note != "" {
		return text("ordered %s %s, with the note %q", req.Params.RequestState, in.Item, note)
	}
	return &sdk.CallToolResult{InputRequests: sdk.InputRequestMap{
		"quantity": &sdk.ElicitParams{Message: "How many " + in.Item + " should we reorder?", RequestedSchema: map[string]any{
			"type": "object", "required": []any{"quantity"},
			"properties": map[string]any{"quantity": map[string]any{"type": "integer", "minimum": 1, "maximum": 500}}}},
	}}, nil, nil
}

// scriptedModel is the example's model without an API key: on the
// warehouse it looks the mugs up and counts the shelf, in parallel; on
// another server it calls a tool named echo, if there is one. Then it
// answers with what the tools said.
func scriptedModel() providers.Model {
	return scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		if req.System == "You write one-line notes to suppliers." { // reorder's sampling request
			return providers.Response{Message: providers.Message{Content: "Please deliver by Friday."}}, nil
		}
		if scripted.Turn(req) > 0 {
			var said []string
			for _, m := range req.Messages {
				if m.Role == providers.RoleTool {
					said = append(said, m.Content)
				}
			}
			return providers.Response{Message: providers.Message{Content: "The tools said: " + strings.Join(said, "; ")}}, nil
		}
		var calls []providers.ToolCall
		for _, t := range req.Tools {
			switch t.Name {
			case "stock":
				calls = append(calls, providers.ToolCall{Name: t.Name, Arguments: `{"item":"blue mug"}`})
			case "count_shelf":
				calls = append(calls, providers.ToolCall{Name: t.Name, Arguments: `{"shelf":"B2"}`})
			case "reorder":
				calls = append(calls, providers.ToolCall{Name: t.Name, Arguments: `{"item":"blue mugs"}`})
			case "echo":
				args, _ := json.Marshal(map[string]string{"message": "hello from cairn"})
				calls = append(calls, providers.ToolCall{Name: t.Name, Arguments: string(args)})
			}
		}
		if len(calls) == 0 {
			return providers.Response{Message: providers.Message{Content: "This server has no tool I know how to call without a real model."}}, nil
		}
		return providers.Response{Message: providers.Message{ToolCalls: calls}}, nil
	})
}
