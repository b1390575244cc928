package durable_test

import (
	"context"
	"fmt"
	"slices"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// A worker with Tracing reports each run it executes as a trace: the
// run's span, and under it one span per activity attempt, timer, signal
// and child run.
func ExampleTracing() {
	ctx := context.Background()
	spans := tracetest.NewInMemoryExporter() // an OTLP exporter in production
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans), sdktrace.WithIDGenerator(durable.IDGenerator{}))

	double := durable.NewActivity("double", func(ctx context.Context, n int) (int, error) { return 2 * n, nil })
	twice := durable.NewWorkflow("twice", func(ctx durable.Context, n int) (int, error) {
		n, err := durable.Execute(ctx, double, n)
		if err != nil {
			return 0, err
		}
		return durable.Execute(ctx, double, n)
	})
	store := inmem.New()
	// snippet:tracing
	worker := durable.NewWorker(store, durable.WorkerOptions{
		Tracing: &durable.Tracing{TracerProvider: tp}, // tp built with durable.IDGenerator
	})
	// end snippet:tracing
	worker.Register(twice)
	client := durable.NewClient(store, durable.ClientOptions{})
	run, _ := twice.Start(ctx, client, "twice-1", 10)
	_ = worker.Drain(ctx) // a service calls Run
	out, _ := run.Result(ctx)
	_ = tp.ForceFlush(ctx)

	var names []string
	for _, s := range spans.GetSpans() {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	fmt.Println(out, names)
	// Output: 40 [activity double activity double run twice]
}
