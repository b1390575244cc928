package redis_test

import (
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// BenchmarkCommit measures a durable step's commit (two events, as an
// activity's completion and the next command) against a raw round trip
// (PING) on the same server: x-rtt is their ratio. It runs on the server
// of CAIRN_BENCH_REDIS_URL if that is set (see engine_bench_test.go).
func BenchmarkCommit(b *testing.B) {
	ctx := b.Context()
	target := redistest.ForBench(b)
	client := goredis.NewClient(target.Options())
	b.Cleanup(func() { client.Close() })
	count := &roundTrips{}
	client.AddHook(count)
	s := redis.New(client, redis.WithPrefix(target.Prefix))
	b.Cleanup(func() { s.Close() })
	info, _, err := s.CreateRun(ctx, backend.RunInfo{ID: "bench", Workflow: "wf"}, []byte("started"))
	if err != nil {
		b.Fatal(err)
	}
	lease, err := s.Lease(ctx, "bench", "w1", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	event := []byte(`{"v":1,"seq":2,"type":"activity_completed","step":1,"payload":"ok"}`)
	run := info
	run.Status = backend.StatusRunning
	expect := int64(1)

	rtt := meanPing(b, client)

	b.ResetTimer()
	before := count.n.Load()
	for b.Loop() {
		c := backend.Commit{Lease: lease, Expect: expect, Events: [][]byte{event, event}, Run: run}
		if err := s.Commit(ctx, c); err != nil {
			b.Fatal(err)
		}
		expect += 2
	}
	b.StopTimer()
	perOp := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(count.n.Load()-before)/float64(b.N), "rtt/op")
	b.ReportMetric(float64(perOp)/float64(rtt), "x-rtt")
	b.ReportMetric(float64(rtt.Microseconds()), "us/ping")
}

// BenchmarkCreateRun measures CreateRun (what Start costs the store) on a
// single server against a raw round trip (PING): x-rtt is their ratio,
// rtt/op the round trips it takes.
func BenchmarkCreateRun(b *testing.B) {
	ctx := b.Context()
	target := redistest.ForBench(b)
	client := goredis.NewClient(target.Options())
	b.Cleanup(func() { client.Close() })
	count := &roundTrips{}
	client.AddHook(count)
	s := redis.New(client, redis.WithPrefix(target.Prefix))
	b.Cleanup(func() { s.Close() })
	if _, _, err := s.CreateRun(ctx, backend.RunInfo{ID: "warm-up", Workflow: "wf"}, []byte("started")); err != nil {
		b.Fatal(err) // loads the scripts
	}
	rtt := meanPing(b, client)

	b.ResetTimer()
	before := count.n.Load()
	n := 0
	for b.Loop() {
		n++
		if _, _, err := s.CreateRun(ctx, backend.RunInfo{ID: fmt.Sprint("run-", n), Workflow: "wf"}, []byte("started")); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	perOp := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(count.n.Load()-before)/float64(b.N), "rtt/op")
	b.ReportMetric(float64(perOp)/float64(rtt), "x-rtt")
	b.ReportMetric(float64(rtt.Microseconds()), "us/ping")
}

// meanPing returns the mean time of a raw round trip (PING) to client's
// server, over 1,000.
func meanPing(b *testing.B, client *goredis.Client) time.Duration {
	b.Helper()
	const pings = 1000
	start := time.Now()
	for range pings {
		if err := client.Ping(b.Context()).Err(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / pings
}
