package mcp_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// BenchmarkServe measures a run of an agent (one scripted model call)
// started through the MCP handler and waited for in the same call, over
// loopback HTTP, against the same run started and waited for with
// Runtime.Start and Run.Result, alternately in the same benchmark:
// direct-us/op, mcp-us/op, and their ratio and difference; and, for
// scale, noop-call-us/op, a call of a tool that does nothing on the same
// server (the SDK's JSON-RPC over HTTP alone). In memory and on Redis (a
// private redis-server, or CAIRN_BENCH_REDIS_URL's).
//
//	go test ./tools/mcp -run X -bench Serve -benchtime 200x -count 3
func BenchmarkServe(b *testing.B) {
	for _, name := range []string{"inmem", "redis"} {
		b.Run(name, func(b *testing.B) {
			var store backend.Store
			if name == "inmem" {
				store = inmem.New()
			} else {
				target := redistest.ForBench(b)
				rs, err := redis.Open(target.URL, redis.WithPrefix(target.Prefix), redis.WithLogger(slog.New(slog.DiscardHandler)))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = rs.Close() })
				store = rs
			}
			benchServe(b, store)
		})
	}
}

func benchServe(b *testing.B, store backend.Store) {
	a := &agent.Agent{Name: "echo", Model: scripted.Func(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		return providers.Response{Message: providers.Message{Content: "ok"}}, nil
	})}
	rt := agent.NewRuntime(store, agent.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := rt.Register(a); err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rt.NewWorker(durable.WorkerOptions{}).Run(ctx)
	}()
	b.Cleanup(func() { stop(); <-done })
	srv, err := mcp.NewAgentServer(rt, mcp.ServeOptions{Agents: []*agent.Agent{a}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	// A tool that does nothing, on the same server: the SDK's own cost
	// of a call over loopback HTTP.
	srv.MCPServer().AddTool(&sdk.Tool{Name: "noop", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "ok"}}}, nil
		})
	web := httptest.NewServer(srv)
	b.Cleanup(web.Close)
	session, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).
		Connect(ctx, &sdk.StreamableClientTransport{Endpoint: web.URL}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = session.Close() })

	direct := func() {
		run, err := rt.Start(ctx, a, "d-"+rand.Text(), agent.Input{Message: "hi"})
		if err == nil {
			_, err = run.Result(ctx)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	served := func() {
		res, err := session.CallTool(ctx, &sdk.CallToolParams{Name: "echo",
			Arguments: map[string]any{"message": "hi", "run_id": "m-" + rand.Text()}})
		if err != nil {
			b.Fatal(err)
		}
		if res.IsError {
			b.Fatal(res.Content[0].(*sdk.TextContent).Text)
		}
	}
	noop := func() {
		if _, err := session.CallTool(ctx, &sdk.CallToolParams{Name: "noop", Arguments: map[string]any{}}); err != nil {
			b.Fatal(err)
		}
	}
	// Warm both paths (connections, the worker's first run).
	for range 5 {
		direct()
		served()
	}
	var inDirect, inServed, inNoop time.Duration
	b.ResetTimer()
	for i := range b.N {
		tn := time.Now()
		noop()
		inNoop += time.Since(tn)
		// Alternate which goes first, so neither always follows the other.
		first, second := direct, served
		if i%2 == 1 {
			first, second = served, direct
		}
		t0 := time.Now()
		first()
		t1 := time.Now()
		second()
		t2 := time.Now()
		if i%2 == 0 {
			inDirect, inServed = inDirect+t1.Sub(t0), inServed+t2.Sub(t1)
		} else {
			inServed, inDirect = inServed+t1.Sub(t0), inDirect+t2.Sub(t1)
		}
	}
	b.StopTimer()
	d, s := float64(inDirect.Microseconds())/float64(b.N), float64(inServed.Microseconds())/float64(b.N)
	b.ReportMetric(float64(inNoop.Microseconds())/float64(b.N), "noop-call-us/op")
	b.ReportMetric(d, "direct-us/op")
	b.ReportMetric(s, "mcp-us/op")
	b.ReportMetric(s-d, "overhead-us/op")
	b.ReportMetric(s/d, "ratio")
}
