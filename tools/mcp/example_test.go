package mcp_test

import (
	"context"
	"fmt"
	"log"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools/mcp"
)

type cityArgs struct {
	City string `json:"city" jsonschema:"the city"`
}

// forecastServer is an MCP server with one tool, written with the go-sdk.
func forecastServer() *sdk.Server {
	server := sdk.NewServer(&sdk.Implementation{Name: "weather", Version: "1"}, nil)
	sdk.AddTool(server, &sdk.Tool{Name: "forecast", Description: "Tomorrow's weather in a city."},
		func(ctx context.Context, req *sdk.CallToolRequest, in cityArgs) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: in.City + ": sunny, 24°C"}}}, nil, nil
		})
	return server
}

// An agent uses the tools of an MCP server: here a go-sdk server in the
// same process; mcp.Command runs one as a process over stdio, and
// mcp.StreamableHTTP reaches one over HTTP. Each run records the server's
// tool list once; each call is a durable activity.
func Example() {
	ctx := context.Background()
	server := forecastServer()
	model := scripted.New(
		providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
			{Name: "weather_forecast", Arguments: `{"city":"Lisbon"}`}}}},
		providers.Response{Message: providers.Message{Content: "Sunny and 24°C in Lisbon tomorrow."}})

	// snippet:mcp
	weather, err := mcp.NewClient("weather", mcp.InProcess(server), mcp.Options{
		Prefix:  "weather_", // weather_forecast: no clash with other servers' tools
		Timeout: 30 * time.Second,
		// RequireApproval: []string{"weather_forecast"} would have a person approve each call.
	})
	if err != nil {
		log.Fatal(err)
	}
	defer weather.Close()
	forecaster := &agent.Agent{
		Name:     "forecaster",
		Model:    model, // scripted here; openai.New("gpt-4o-mini") for real
		Toolsets: []agent.Toolset{weather},
	}
	// end snippet:mcp

	rt := agent.NewRuntime(inmem.New(), agent.Options{})
	if err := rt.Register(forecaster); err != nil {
		log.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go rt.NewWorker(durable.WorkerOptions{}).Run(wctx)
	run, err := rt.Start(ctx, forecaster, "forecast-1", agent.Input{Message: "Will it be sunny in Lisbon tomorrow?"})
	if err != nil {
		log.Fatal(err)
	}
	res, err := run.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range res.Messages {
		if m.Role == providers.RoleTool {
			fmt.Println("tool:", m.Content)
		}
	}
	fmt.Println("answer:", res.Text)
	// Output:
	// tool: Lisbon: sunny, 24°C
	// answer: Sunny and 24°C in Lisbon tomorrow.
}
