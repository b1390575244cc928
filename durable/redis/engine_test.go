package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestEngine runs workflows with activities, a durable timer, a signal
// and a child run through two workers sharing the store, on the system
// clock, and checks that every activity ran once.
func TestEngine(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv := redistest.Start(t)
	store := open(t, srv.URL())

	var mu sync.Mutex
	ran := map[string]int{}
	record := func(ctx context.Context) {
		info, _ := durable.ActivityInfoFrom(ctx)
		mu.Lock()
		ran[info.IdempotencyKey]++
		mu.Unlock()
	}
	double := durable.NewActivity("double", func(ctx context.Context, n int) (int, error) {
		record(ctx)
		return 2 * n, nil
	})
	approve := durable.NewSignal[string]("approve")
	child := durable.NewWorkflow("child", func(ctx durable.Context, n int) (int, error) {
		return durable.Execute(ctx, double, n)
	})
	parent := durable.NewWorkflow("parent", func(ctx durable.Context, n int) (string, error) {
		a, err := durable.Execute(ctx, double, n)
		if err != nil {
			return "", err
		}
		if err := durable.Sleep(ctx, 20*time.Millisecond); err != nil {
			return "", err
		}
		who, err := approve.Receive(ctx)
		if err != nil {
			return "", err
		}
		b, err := durable.ExecuteChild(ctx, child, a)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d approved by %s", b, who), nil
	})

	workerCtx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range 2 {
		w := durable.NewWorker(store, durable.WorkerOptions{ID: fmt.Sprint("w", i), LeaseTTL: 2 * time.Second})
		w.Register(parent, child)
		wg.Go(func() {
			if err := w.Run(workerCtx); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() {
		stopWorkers()
		wg.Wait()
	}()

	client := durable.NewClient(store, durable.ClientOptions{})
	const runs = 10
	for i := range runs {
		id := fmt.Sprint("order-", i)
		if _, err := parent.Start(ctx, client, id, i); err != nil {
			t.Fatal(err)
		}
		go func() {
			for ctx.Err() == nil {
				info, err := client.Describe(ctx, id)
				if err == nil && strings.Contains(info.Waiting, "approve") {
					if err := approve.Send(ctx, client, id, "ann"); err != nil {
						t.Error(err)
					}
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	for i := range runs {
		got, err := parent.Get(client, fmt.Sprint("order-", i)).Result(ctx)
		if want := fmt.Sprintf("%d approved by ann", 4*i); err != nil || got != want {
			t.Fatalf("run %d = %q, %v; want %q", i, got, err, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 2*runs {
		t.Errorf("%d activity steps ran; want %d", len(ran), 2*runs)
	}
	for key, n := range ran {
		if n != 1 {
			t.Errorf("activity %s ran %d times; want once", key, n)
		}
	}
}
