package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// benchWaiting is the number of runs that wait for approval in
// BenchmarkPendingApprovals: the brief's "pending approvals across 2,000
// waiting runs listed in under 20 ms".
const benchWaiting = 2000

// BenchmarkPendingApprovals measures the approvals inbox across runs,
// Runtime.Pending with Kind approval (what `cairn approvals` and the
// console's inbox call), with 2,000 runs on Redis that each wait for the
// approval of one tool call. The runs are started and brought to
// awaiting_approval before the timer starts; each iteration lists them
// all, through a store with a client of its own whose round trips a hook
// counts. It reports:
//
//	ms/list    the time of one listing of the 2,000 pending calls
//	rtt/list   Redis round trips of one listing
//	rtt/run    the same per waiting run
//	us/rtt     one raw Redis round trip (PING, median of 2,000)
//	x-rtt      the listing's time over one round trip
//
// It runs on a private redis-server, or on the one CAIRN_BENCH_REDIS_URL
// names (see redistest.ForBench). Run it with:
//
//	go test ./agent -run XXX -bench PendingApprovals -benchtime 10x -count 3
func BenchmarkPendingApprovals(b *testing.B) {
	ctx := context.Background()
	target := redistest.ForBench(b)
	quiet := slog.New(slog.DiscardHandler)

	refund := tools.MustNew("refund", "refund an order", func(ctx context.Context, in benchArgs) (string, error) {
		return "refunded " + in.Key, nil
	}, tools.RequireApproval())
	set, err := tools.NewSet(refund)
	if err != nil {
		b.Fatal(err)
	}
	model := scripted.New(
		providers.Response{Message: providers.Message{Content: "Refunding.",
			ToolCalls: []providers.ToolCall{{Name: "refund", Arguments: `{"key":"A1"}`}}}},
		providers.Response{Message: providers.Message{Content: "Refunded."}},
	)
	a := &agent.Agent{Name: "refunder", Instructions: "Refund orders.", Model: model, Tools: set}

	ws, err := redis.Open(target.URL, redis.WithLogger(quiet), redis.WithPrefix(target.Prefix))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.Close() })
	rt := agent.NewRuntime(ws, agent.Options{Logger: quiet})
	if err := rt.Register(a); err != nil {
		b.Fatal(err)
	}
	benchWorker(b, rt)
	benchStartWaiting(b, rt, a)

	ls, err := redis.Open(target.URL, redis.WithLogger(quiet), redis.WithPrefix(target.Prefix))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ls.Close() })
	trips := &benchRoundTrips{}
	ls.Client().AddHook(trips)
	lister := agent.NewRuntime(ls, agent.Options{Logger: quiet})
	filter := agent.PendingFilter{Kind: agent.KindApproval}
	// Warm up (connections) and check the list.
	calls, err := lister.Pending(ctx, filter)
	if err != nil {
		b.Fatal(err)
	}
	if len(calls) != benchWaiting {
		b.Fatalf("%d pending approvals, want %d", len(calls), benchWaiting)
	}
	rtt := benchPing(b, target.Client())

	var n int64
	before := trips.n.Load()
	for b.Loop() {
		if _, err := lister.Pending(ctx, filter); err != nil {
			b.Fatal(err)
		}
		n++
	}
	perList := float64(b.Elapsed()) / float64(n)
	counted := float64(trips.n.Load()-before) / float64(n)
	b.ReportMetric(perList/1e6, "ms/list")
	b.ReportMetric(counted, "rtt/list")
	b.ReportMetric(counted/benchWaiting, "rtt/run")
	b.ReportMetric(float64(rtt)/1e3, "us/rtt")
	b.ReportMetric(perList/float64(rtt), "x-rtt")
}

// benchStartWaiting starts benchWaiting runs of a, from a few goroutines,
// and returns when all of them wait for approval.
func benchStartWaiting(b *testing.B, rt *agent.Runtime, a *agent.Agent) {
	b.Helper()
	ctx := context.Background()
	const starters = 8
	var wg sync.WaitGroup
	errs := make(chan error, starters)
	for s := range starters {
		wg.Go(func() {
			for i := s; i < benchWaiting; i += starters {
				if _, err := rt.Start(ctx, a, fmt.Sprintf("waiting-%d", i), agent.Input{Message: "Refund A1."}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	// Setup, not measured: a poll is good enough here.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		waiting, err := rt.Client().ListRuns(ctx, backend.RunFilter{Status: backend.StatusAwaitingApproval})
		if err != nil {
			b.Fatal(err)
		}
		if len(waiting) == benchWaiting {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d runs await approval after 2 minutes", len(waiting), benchWaiting)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
