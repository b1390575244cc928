package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
)

// hideMarks is a store without the ExportMarker capability: a traced
// worker on it emits spans but keeps no export marks.
type hideMarks struct{ backend.Store }

// BenchmarkTracingCost measures what tracing costs a step, on Redis: 100
// concurrent runs of 10 no-op steps and one run of 500 sequential steps,
// untraced, traced without export marks (spans batched by the SDK to an
// exporter that drops them; nothing survives a crash), and traced with
// marks (what makes spans survive a crash: the worker flushes the provider
// and records each run's mark every 200 ms, ten times the default rate so
// that marks weigh more than they would, and lets each ended run go only
// after that, with one more commit). The variants
// take turns in each iteration, each on keys and a worker of its own, and
// are reported as ratios to the untraced one:
//
//	x-traced-seq, x-marked-seq   sequential step time over the untraced one
//	x-traced-tput, x-marked-tput steps/s of the concurrent runs over the untraced
//	us/step-untraced, steps/s-untraced  the baseline itself
//
// Run it with: go test ./durable/redis -run XXX -bench TracingCost -benchtime 3x
func BenchmarkTracingCost(b *testing.B) {
	_, _, target := benchStore(b)
	type variant struct {
		name    string
		store   backend.Store
		tracing *durable.Tracing
		seq     time.Duration // per step, summed over iterations
		tput    float64       // steps/s, summed
	}
	variants := make([]*variant, 0, 3)
	for _, name := range []string{"untraced", "traced", "marked"} {
		rdb := goredis.NewClient(target.Options())
		store := redis.New(rdb, redis.WithPrefix(target.Prefix+"-"+name))
		b.Cleanup(func() { store.Close(); rdb.Close() })
		v := &variant{name: name, store: store}
		if name != "untraced" {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
				sdktrace.WithIDGenerator(durable.IDGenerator{}))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			v.tracing = &durable.Tracing{TracerProvider: tp, ExportInterval: 200 * time.Millisecond}
		}
		if name == "traced" {
			v.store = hideMarks{store}
		}
		variants = append(variants, v)
	}
	ctx := context.Background()
	for i := range b.N {
		for _, v := range variants {
			w := durable.NewWorker(v.store, durable.WorkerOptions{Logger: slog.New(slog.DiscardHandler), Tracing: v.tracing})
			w.Register(benchSteps)
			wctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); _ = w.Run(wctx) }()
			client := durable.NewClient(v.store, durable.ClientOptions{})

			const seqSteps = 500
			start := time.Now()
			run, err := benchSteps.Start(ctx, client, fmt.Sprintf("seq-%d", i), seqSteps)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := run.Result(ctx); err != nil {
				b.Fatal(err)
			}
			v.seq += time.Since(start) / seqSteps
			elapsed := concurrentRuns(b, client, fmt.Sprintf("c-%d", i), 100, 10)
			v.tput += 1000 / elapsed.Seconds()
			cancel()
			<-done
		}
	}
	base := variants[0]
	b.ReportMetric(float64(base.seq)/float64(b.N)/1e3, "us/step-untraced")
	b.ReportMetric(base.tput/float64(b.N), "steps/s-untraced")
	for _, v := range variants[1:] {
		b.ReportMetric(float64(v.seq)/float64(base.seq), "x-"+v.name+"-seq")
		b.ReportMetric(v.tput/base.tput, "x-"+v.name+"-tput")
	}
}
