package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// BenchmarkDurableCall measures what durability adds to an MCP tool call:
// sequential calls of a go-sdk server's echo tool (in this process, over
// an in-memory pipe) made as durable activities of one workflow (run by a
// worker on the store, journaled, 100 calls a run), against the same
// calls made with the go-sdk's ClientSession.CallTool, measured in the
// same run, 100 of each in turn. It reports both per call, and their ratio (x-plain) and
// difference (overhead-us).
//
//	go test ./tools/mcp -run XXX -bench DurableCall -benchtime 2000x -count 3
func BenchmarkDurableCall(b *testing.B) {
	b.Run("inmem", func(b *testing.B) { benchDurableCall(b, inmem.New()) })
	b.Run("redis", func(b *testing.B) {
		target := redistest.ForBench(b)
		client := goredis.NewClient(target.Options())
		b.Cleanup(func() { client.Close() })
		store := redis.New(client, redis.WithPrefix(target.Prefix))
		b.Cleanup(func() { store.Close() })
		benchDurableCall(b, store)
	})
}

func benchDurableCall(b *testing.B, store backend.Store) {
	ctx := b.Context()
	server := newTestServer(&calls{})
	args := json.RawMessage(`{"message":"hi"}`)

	// The plain go-sdk call.
	serverEnd, clientEnd := sdk.NewInMemoryTransports()
	if _, err := server.Connect(ctx, serverEnd, nil); err != nil {
		b.Fatal(err)
	}
	session, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, clientEnd, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer session.Close()
	plain := func() error {
		_, err := session.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: args})
		return err
	}

	// The durable call: the cairn tool, in an activity.
	c, err := mcp.NewClient("bench", mcp.InProcess(server), mcp.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	set, err := c.Tools(ctx)
	if err != nil {
		b.Fatal(err)
	}
	echo, _ := set.Lookup("echo")
	act := durable.NewActivity("mcp-echo", func(ctx context.Context, _ int) (string, error) {
		res, err := echo.Call(ctx, args)
		return res.Content, err
	})
	const perRun = 100
	wf := durable.NewWorkflow("mcp-calls", func(ctx durable.Context, n int) (int, error) {
		for i := range n {
			if _, err := durable.Execute(ctx, act, i); err != nil {
				return i, err
			}
		}
		return n, nil
	})
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w.Register(wf)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	defer func() { stop(); <-done }()
	client := durable.NewClient(store, durable.ClientOptions{})
	runs := 0
	durableCalls := func(n int) error {
		for n > 0 {
			k := min(n, perRun)
			runs++
			run, err := wf.Start(ctx, client, fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), runs), k)
			if err != nil {
				return err
			}
			if _, err := run.Result(ctx); err != nil {
				return err
			}
			n -= k
		}
		return nil
	}
	// Warm both up.
	if err := plain(); err != nil {
		b.Fatal(err)
	}
	if err := durableCalls(perRun); err != nil {
		b.Fatal(err)
	}

	// Alternate 100 plain calls and a run of 100 durable ones, so that
	// a machine whose load changes slows both alike.
	b.ResetTimer()
	var plainTime, durableTime time.Duration
	for done := 0; done < b.N; {
		k := min(perRun, b.N-done)
		start := time.Now()
		for range k {
			if err := plain(); err != nil {
				b.Fatal(err)
			}
		}
		plainTime += time.Since(start)
		start = time.Now()
		if err := durableCalls(k); err != nil {
			b.Fatal(err)
		}
		durableTime += time.Since(start)
		done += k
	}
	b.StopTimer()
	plainUS := float64(plainTime.Microseconds()) / float64(b.N)
	durableUS := float64(durableTime.Microseconds()) / float64(b.N)
	b.ReportMetric(plainUS, "plain-us/call")
	b.ReportMetric(durableUS, "durable-us/call")
	b.ReportMetric(durableUS-plainUS, "overhead-us")
	b.ReportMetric(durableUS/plainUS, "x-plain")
}
