package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/benchflow"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// The benchmarks report, with b.ReportMetric, the units the brief's targets
// are stated in, so that a script can read them:
//
//	us/step           one sequential durable step (no-op activity)
//	rtt/step          Redis round trips per step (a go-redis hook counts them)
//	client-rtt/step   round trips per step of a client waiting on Run.Result
//	x-rtt             the step's time divided by one raw Redis round trip
//	steps/s           100 concurrent runs of 10 steps (1,000 on a 3-master cluster)
//	x-single          steps/s on a 3-master Redis Cluster divided by steps/s on one server
//	ms/replay10k      picking up a run with a 10,000-event history
//	ms/timer-late-p99 how late durable timers fire, 99th percentile
//
// Run them with: go test ./durable/redis -run XXX -bench . -benchtime 1x
// (each iteration is a whole scenario).
//
// Each benchmark starts a private redis-server on a free loopback port,
// unless CAIRN_BENCH_REDIS_URL names one to use (redistest.BenchURLEnv),
// e.g. to compare two branches side by side on one server:
//
//	CAIRN_BENCH_REDIS_URL=redis://127.0.0.1:7001/0 go test ./durable/redis -run XXX -bench . -benchtime 1x
//
// Then each benchmark writes under a random key prefix of its own and
// deletes its keys when it ends (the cluster half of
// BenchmarkClusterThroughput still starts its own cluster). Other clients
// of that server compete with the benchmark for it.

// benchNoop and benchSteps are the benchmarks' step and workflow.
var (
	benchNoop  = benchflow.Noop
	benchSteps = benchflow.Steps
)

// benchStore returns a store on the benchmark's Redis server
// (redistest.ForBench), on a client of its own with a counter of the
// round trips it makes, and the server.
func benchStore(b *testing.B) (*redis.Store, *roundTrips, *redistest.Target) {
	target := redistest.ForBench(b)
	rdb := goredis.NewClient(target.Options())
	counter := &roundTrips{}
	rdb.AddHook(counter)
	store := redis.New(rdb, redis.WithPrefix(target.Prefix))
	b.Cleanup(func() { store.Close(); rdb.Close() })
	return store, counter, target
}

// rtt measures one raw Redis round trip (PING), median of 2,000.
func rtt(b *testing.B, rdb *goredis.Client) time.Duration {
	ctx := context.Background()
	times := make([]time.Duration, 2000)
	for i := range times {
		start := time.Now()
		if err := rdb.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		times[i] = time.Since(start)
	}
	slices.Sort(times)
	return times[len(times)/2]
}

// separateClient returns a client on its own connection to the server of
// target, so that waiting for results does not count as the worker's work.
func separateClient(b *testing.B, target *redistest.Target) *durable.Client {
	client, _ := countedClient(b, target)
	return client
}

// countedClient is separateClient with a counter of the client's round
// trips.
func countedClient(b *testing.B, target *redistest.Target) (*durable.Client, *roundTrips) {
	own := goredis.NewClient(target.Options())
	counter := &roundTrips{}
	own.AddHook(counter)
	store := redis.New(own, redis.WithPrefix(target.Prefix))
	b.Cleanup(func() { store.Close(); own.Close() })
	return durable.NewClient(store, durable.ClientOptions{}), counter
}

func newWorker(store backend.Store) *durable.Worker {
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: slog.New(slog.DiscardHandler)})
	w.Register(benchSteps)
	return w
}

// runWorker runs w until the benchmark ends.
func runWorker(b *testing.B, w *durable.Worker) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
}

// BenchmarkSequentialStep measures a run of 2,000 sequential no-op steps.
func BenchmarkSequentialStep(b *testing.B) {
	store, counter, target := benchStore(b)
	runWorker(b, newWorker(store))
	// The client waiting for results has a store of its own, so that only
	// the worker's round trips are counted; the client's are counted on
	// their own.
	client, waiting := countedClient(b, target)
	base := rtt(b, target.Client())
	ctx := context.Background()
	const n = 2000
	var perStep, trips, clientTrips float64
	for i := range b.N {
		before, clientBefore := counter.n.Load(), waiting.n.Load()
		start := time.Now()
		run, err := benchSteps.Start(ctx, client, fmt.Sprintf("seq-%d", i), n)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := run.Result(ctx); err != nil {
			b.Fatal(err)
		}
		perStep += float64(time.Since(start)) / n
		trips += float64(counter.n.Load()-before) / n
		clientTrips += float64(waiting.n.Load()-clientBefore) / n
	}
	perStep /= float64(b.N)
	b.ReportMetric(perStep/1e3, "us/step")
	b.ReportMetric(trips/float64(b.N), "rtt/step")
	b.ReportMetric(clientTrips/float64(b.N), "client-rtt/step")
	b.ReportMetric(perStep/float64(base), "x-rtt")
	b.ReportMetric(float64(base)/1e3, "us/rtt")
}

// BenchmarkConcurrentRuns measures 100 concurrent runs of 10 steps.
func BenchmarkConcurrentRuns(b *testing.B) {
	store, _, target := benchStore(b)
	runWorker(b, newWorker(store))
	client := separateClient(b, target)
	var elapsed time.Duration
	for i := range b.N {
		elapsed += concurrentRuns(b, client, fmt.Sprintf("c-%d", i), 100, 10)
	}
	b.ReportMetric(float64(100*10*b.N)/elapsed.Seconds(), "steps/s")
}

// concurrentRuns starts runs runs of benchSteps, of steps steps each, with
// ids that begin with prefix, and returns how long it took until all of
// them completed, their starts included.
func concurrentRuns(b *testing.B, client *durable.Client, prefix string, runs, steps int) time.Duration {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	started := make([]*durable.Run[int], runs)
	for j := range started {
		var err error
		if started[j], err = benchSteps.Start(ctx, client, fmt.Sprintf("%s-%d", prefix, j), steps); err != nil {
			b.Fatal(err)
		}
	}
	for _, run := range started {
		if _, err := run.Result(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkResume10k measures a worker picking up a run whose 10,000-event
// history was cut off before its last event: read, decode, replay, and one
// more commit to finish it.
func BenchmarkResume10k(b *testing.B) {
	mem := memoryHistory(b, 4999) // 10,000 events
	ctx := context.Background()
	var total time.Duration
	for i := range b.N {
		b.StopTimer()
		store, _, _ := benchStore(b)
		id := fmt.Sprintf("long-%d", i)
		info := backend.RunInfo{ID: id, Workflow: "steps"}
		if _, _, err := store.CreateRun(ctx, info, mem[0]); err != nil {
			b.Fatal(err)
		}
		lease, err := store.Lease(ctx, id, "dead", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		info.Status = backend.StatusRunning
		if err := store.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Events: mem[1 : len(mem)-1], Run: info, Release: true}); err != nil {
			b.Fatal(err)
		}
		w := newWorker(store)
		b.StartTimer()
		start := time.Now()
		if err := w.Drain(ctx); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		if got, _ := store.GetRun(ctx, id); got.Status != backend.StatusCompleted || got.HistoryLen != 10000 {
			b.Fatalf("run %s with %d events", got.Status, got.HistoryLen)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()*1e3/float64(b.N), "ms/replay10k")
}

// BenchmarkTimerLateness starts 200 runs that each sleep between 10 and
// 300 ms and reports how late their timers fired, as the history records it.
func BenchmarkTimerLateness(b *testing.B) {
	sleeper := durable.NewWorkflow("sleeper", func(ctx durable.Context, d time.Duration) (struct{}, error) {
		return struct{}{}, durable.Sleep(ctx, d)
	})
	store, _, _ := benchStore(b)
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: slog.New(slog.DiscardHandler)})
	w.Register(sleeper)
	runWorker(b, w)
	client := durable.NewClient(store, durable.ClientOptions{})
	ctx := context.Background()
	var late []time.Duration
	for i := range b.N {
		runs := make([]*durable.Run[struct{}], 200)
		for j := range runs {
			d := time.Duration(10+(j*37)%290) * time.Millisecond
			var err error
			if runs[j], err = sleeper.Start(ctx, client, fmt.Sprintf("t-%d-%d", i, j), d); err != nil {
				b.Fatal(err)
			}
		}
		for _, run := range runs {
			if _, err := run.Result(ctx); err != nil {
				b.Fatal(err)
			}
			history, err := client.History(ctx, run.ID)
			if err != nil {
				b.Fatal(err)
			}
			var fireAt time.Time
			for _, e := range history {
				switch e.Type {
				case backend.EventTimerStarted:
					fireAt = e.FireAt
				case backend.EventTimerFired:
					late = append(late, e.Time.Sub(fireAt))
				}
			}
		}
	}
	slices.Sort(late)
	b.ReportMetric(float64(late[len(late)*99/100])/1e6, "ms/timer-late-p99")
	b.ReportMetric(float64(late[len(late)/2])/1e6, "ms/timer-late-p50")
}

// memoryHistory records, on the in-memory store, the history of a run of n
// steps (2n+2 events).
func memoryHistory(b *testing.B, n int) [][]byte {
	b.Helper()
	store := inmem.New()
	w := newWorker(store)
	client := durable.NewClient(store, durable.ClientOptions{})
	ctx := context.Background()
	if _, err := benchSteps.Start(ctx, client, "long", n); err != nil {
		b.Fatal(err)
	}
	if err := w.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	entries, err := store.ReadHistory(ctx, "long", 1)
	if err != nil {
		b.Fatal(err)
	}
	return entries
}
