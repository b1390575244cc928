package benchflow_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/internal/benchflow"
)

// A benchmark registers Steps with its worker and starts runs of it.
func Example() {
	store := inmem.New()
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: slog.New(slog.DiscardHandler)})
	w.Register(benchflow.Steps)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.Run(ctx) }()

	client := durable.NewClient(store, durable.ClientOptions{})
	run, err := benchflow.Steps.Start(ctx, client, "bench-1", 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := run.Result(ctx)
	fmt.Println(n, err)
	// Output: 3 <nil>
}
