package mcp_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// BenchmarkInputRound measures what a server's sampling request costs an
// agent run when it is served durably (the call ends, the model samples
// in an activity of its own, the call is made again): runs of an agent
// whose one tool call samples, against runs of an agent whose one tool
// call does not, on an in-memory store, alternated, in the same process.
// It reports both per run, their ratio (x-plain) and difference
// (round-us: one input round).
//
//	go test ./tools/mcp -run XXX -bench InputRound -benchtime 300x -count 3
func BenchmarkInputRound(b *testing.B) {
	server := sdk.NewServer(&sdk.Implementation{Name: "bench", Version: "1"}, nil)
	sdk.AddTool(server, &sdk.Tool{Name: "plain", Description: "Answer at once."},
		func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "ok"}}}, nil, nil
		})
	sdk.AddTool(server, &sdk.Tool{Name: "sampler", Description: "Ask the client's model first."},
		func(_ context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
			if _, ok := req.Params.InputResponses["s"]; ok {
				return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "ok"}}}, nil, nil
			}
			return &sdk.CallToolResult{InputRequests: sdk.InputRequestMap{"s": &sdk.CreateMessageParams{MaxTokens: 10, SystemPrompt: "sample",
				Messages: []*sdk.SamplingMessage{{Role: "user", Content: &sdk.TextContent{Text: "hi"}}}}}}, nil, nil
		})
	c, err := mcp.NewClient("bench", mcp.InProcess(server), mcp.Options{Sampling: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	model := func(tool string) providers.Model {
		return scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
			switch {
			case req.System == "sample":
				return providers.Response{Message: providers.Message{Content: "sampled"}}, nil
			case scripted.Turn(req) == 0:
				return toolTurn(tc(tool, `{}`)), nil
			}
			return answer("done"), nil
		})
	}
	plain := &agent.Agent{Name: "plain", Model: model("plain"), Toolsets: []agent.Toolset{c}}
	sampling := &agent.Agent{Name: "sampling", Model: model("sampler"), Toolsets: []agent.Toolset{c}}
	rt := agent.NewRuntime(inmem.New(), agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := rt.Register(plain, sampling); err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(b.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.NewWorker(durable.WorkerOptions{}).Run(ctx) }()
	defer func() { stop(); <-done }()
	n := 0
	runOnce := func(a *agent.Agent) time.Duration {
		n++
		start := time.Now()
		run, err := rt.Start(ctx, a, fmt.Sprintf("%s-%d", a.Name, n), agent.Input{Message: "go"})
		if err != nil {
			b.Fatal(err)
		}
		res, err := run.Result(ctx)
		if err != nil || res.Text != "done" {
			b.Fatal(res.Text, err)
		}
		return time.Since(start)
	}
	runOnce(plain)
	runOnce(sampling)
	b.ResetTimer()
	var plainTime, samplingTime time.Duration
	for range b.N {
		plainTime += runOnce(plain)
		samplingTime += runOnce(sampling)
	}
	b.StopTimer()
	plainUS := float64(plainTime.Microseconds()) / float64(b.N)
	samplingUS := float64(samplingTime.Microseconds()) / float64(b.N)
	b.ReportMetric(plainUS, "plain-us/run")
	b.ReportMetric(samplingUS, "sampling-us/run")
	b.ReportMetric(samplingUS-plainUS, "round-us")
	b.ReportMetric(samplingUS/plainUS, "x-plain")
}
