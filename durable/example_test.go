package durable_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// The minimal program of the package documentation.
func Example_hello() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	greet := durable.NewActivity("greet", func(ctx context.Context, name string) (string, error) {
		return "hello, " + name, nil // the I/O goes here: it runs once, its result is journaled
	})
	hello := durable.NewWorkflow("hello", func(ctx durable.Context, name string) (string, error) {
		return durable.Execute(ctx, greet, name)
	})

	store := inmem.New() // redis.Open(url) in production
	worker := durable.NewWorker(store, durable.WorkerOptions{})
	worker.Register(hello)
	go worker.Run(ctx)

	client := durable.NewClient(store, durable.ClientOptions{})
	run, err := hello.Start(ctx, client, "hello-ann", "ann") // the caller names the run
	if err != nil {
		fmt.Println(err)
		return
	}
	greeting, err := run.Result(ctx)
	fmt.Println(greeting, err)
	// Output:
	// hello, ann <nil>
}

// A workflow is ordinary Go: here it asks for an approval, waits for it at
// most a day, and ships. The activity runs once, whatever happens to the
// worker in between; the wait holds no worker.
func Example() {
	// snippet:workflow
	ship := durable.NewActivity("ship", func(ctx context.Context, order string) (string, error) {
		info, _ := durable.ActivityInfoFrom(ctx)
		// Pass info.IdempotencyKey to the carrier so a retry ships once.
		return fmt.Sprintf("%s shipped (key %s)", order, info.IdempotencyKey), nil
	})
	approve := durable.NewSignal[string]("approve")
	order := durable.NewWorkflow("order", func(ctx durable.Context, id string) (string, error) {
		who, ok, err := approve.ReceiveTimeout(ctx, 24*time.Hour) // holds no worker while it waits
		if err != nil {
			return "", err
		}
		if !ok {
			return id + " expired", nil
		}
		out, err := durable.Execute(ctx, ship, id)
		return out + ", approved by " + who, err
	})

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	store := inmem.New()
	worker := durable.NewWorker(store, durable.WorkerOptions{})
	worker.Register(order)
	go worker.Run(ctx)

	client := durable.NewClient(store, durable.ClientOptions{})
	run, _ := order.Start(ctx, client, "order-7", "order-7") // the caller's id: starting it again is harmless
	_ = approve.Send(ctx, client, "order-7", "kim")          // from any process, minutes or days later
	result, err := run.Result(ctx)
	// end snippet:workflow
	fmt.Println(result, err)

	history, _ := client.History(ctx, "order-7")
	var types []string
	for _, e := range history {
		types = append(types, string(e.Type))
	}
	fmt.Println(strings.Join(types, "\n"))
	// Output:
	// order-7 shipped (key order-7/0/2), approved by kim <nil>
	// run_started
	// timer_started
	// signal_received
	// timer_canceled
	// activity_scheduled
	// activity_completed
	// run_completed
}

// Replaying a recorded history against changed code finds the first step
// where they part: run it before a deploy.
func ExampleReplayHistory() {
	charge := durable.NewActivity("charge", func(ctx context.Context, cents int) (int, error) { return cents, nil })
	refund := durable.NewActivity("refund", func(ctx context.Context, cents int) (int, error) { return -cents, nil })
	v1 := durable.NewWorkflow("pay", func(ctx durable.Context, cents int) (int, error) {
		return durable.Execute(ctx, charge, cents)
	})
	v2 := durable.NewWorkflow("pay", func(ctx durable.Context, cents int) (int, error) {
		return durable.Execute(ctx, refund, cents) // changed without durable.Version
	})

	ctx := context.Background()
	store := inmem.New()
	worker := durable.NewWorker(store, durable.WorkerOptions{})
	worker.Register(v1)
	client := durable.NewClient(store, durable.ClientOptions{})
	_, _ = v1.Start(ctx, client, "pay-1", 500)
	_ = worker.Drain(ctx)
	history, _ := client.History(ctx, "pay-1")

	fmt.Println("v1:", durable.ReplayHistory(v1, history))
	err := durable.ReplayHistory(v2, history)
	fmt.Print("v2: ", err.(*durable.NondeterminismError).Diff())
	// Output:
	// v1: <nil>
	// v2: run replay, step 1, history position 2
	// - expected (history): activity charge (step 1)
	// + actual   (code):    issued activity refund (step 1)
}
