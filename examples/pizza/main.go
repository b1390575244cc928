// Pizza is cairn's first example: a pizza order as a durable workflow.
//
// The workflow takes an order, prepares the pizza, waits (a durable timer),
// delivers the pizza and sends a receipt. Each step is an activity whose
// result is journaled in the run's history, which the example prints at
// the end. It needs no setup: the store is in memory.
//
//	go run ./examples/pizza -wait 1s
//	go run ./examples/pizza -redis redis://127.0.0.1:6379/0
//
// With the Redis store the same code survives crashes and deploys: another
// worker replays the history and carries on from the first step that had
// not finished, without running a finished activity again.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/memory"
	"github.com/cairn-dev/cairn/durable/redis"
)

func main() {
	wait := flag.Duration("wait", 5*time.Second, "how long the pizza waits before delivery (a durable timer)")
	redisURL := flag.String("redis", "", "a Redis URL (redis:// or rediss://) to keep runs in; default: in memory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var store durable.Store = memory.New()
	if *redisURL != "" {
		rs, err := redis.Open(*redisURL)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pizza:", err)
			os.Exit(1)
		}
		defer rs.Close()
		store = rs
	}
	if err := run(ctx, os.Stdout, store, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "pizza:", err)
		os.Exit(1)
	}
}

// newPizzaOrder defines the workflow and its activities, which report to w
// when they run.
func newPizzaOrder(w io.Writer, wait time.Duration) *durable.Workflow[string, string] {
	// Activities do what touches the world. A completed activity never
	// runs again for the same run, not even after a crash.
	takeOrder := durable.NewActivity("TakeOrder", func(ctx context.Context, pizza string) (string, error) {
		// The idempotency key is the same for every attempt of this step,
		// so a retried TakeOrder gets the same order, not a second one.
		info, _ := durable.ActivityInfoFrom(ctx)
		orderID := "order-" + strings.ReplaceAll(info.IdempotencyKey, "/", "-")
		fmt.Fprintf(w, "  [activity] TakeOrder %s -> %s\n", pizza, orderID)
		return orderID, nil
	})
	preparePizza := durable.NewActivity("PreparePizza", func(ctx context.Context, orderID string) (string, error) {
		fmt.Fprintf(w, "  [activity] PreparePizza %s\n", orderID)
		return "baked", nil
	})
	deliverPizza := durable.NewActivity("DeliverPizza", func(ctx context.Context, orderID string) (string, error) {
		fmt.Fprintf(w, "  [activity] DeliverPizza %s\n", orderID)
		return "delivered", nil
	})
	sendReceipt := durable.NewActivity("SendReceipt", func(ctx context.Context, orderID string) (string, error) {
		fmt.Fprintf(w, "  [activity] SendReceipt %s\n", orderID)
		return "receipt sent", nil
	})

	// The workflow is deterministic Go: it reaches the world only through
	// activities and durable timers.
	return durable.NewWorkflow("PizzaOrder", func(ctx durable.Context, pizza string) (string, error) {
		orderID, err := durable.Execute(ctx, takeOrder, pizza)
		if err != nil {
			return "", err
		}
		if _, err := durable.Execute(ctx, preparePizza, orderID); err != nil {
			return "", err
		}
		// A durable wait: the run holds no goroutine while it waits.
		if err := durable.Sleep(ctx, wait); err != nil {
			return "", err
		}
		delivered, err := durable.Execute(ctx, deliverPizza, orderID)
		if err != nil {
			return "", err
		}
		receipt, err := durable.Execute(ctx, sendReceipt, orderID)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s %s, %s", orderID, delivered, receipt), nil
	})
}

// run orders a margherita, waits for the result and prints the run's history.
func run(ctx context.Context, w io.Writer, store durable.Store, wait time.Duration) error {
	pizzaOrder := newPizzaOrder(w, wait)

	// A worker executes runs; it would usually be a process of its own.
	worker := durable.NewWorker(store, durable.WorkerOptions{})
	worker.Register(pizzaOrder)
	workerCtx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan error, 1)
	go func() { workerDone <- worker.Run(workerCtx) }()
	defer func() {
		stopWorker()
		<-workerDone
	}()

	// A client starts runs and waits for them. The run id is the caller's:
	// starting the same id again returns the same run.
	client := durable.NewClient(store, durable.ClientOptions{})
	fmt.Fprintf(w, "Ordering a margherita (wait %v)\n", wait)
	// The run id is fixed, so running the example again against the same
	// Redis shows the run that exists rather than ordering again.
	order, err := pizzaOrder.Start(ctx, client, "pizza-1", "margherita")
	if err != nil {
		return err
	}
	result, err := order.Result(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Run %s completed: %s\n", order.ID, result)

	history, err := client.History(ctx, order.ID)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nWorkflow History")
	return durable.WriteTimeline(w, history)
}
