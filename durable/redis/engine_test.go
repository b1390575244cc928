package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
			assert.NoError(t, w.Run(workerCtx))
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
		_, err := parent.Start(ctx, client, id, i)
		require.NoError(t, err)
		go func() {
			for ctx.Err() == nil {
				info, err := client.Describe(ctx, id)
				if err == nil && strings.Contains(info.Waiting, "approve") {
					assert.NoError(t, approve.Send(ctx, client, id, "ann"))
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	for i := range runs {
		got, err := parent.Get(client, fmt.Sprint("order-", i)).Result(ctx)
		require.NoError(t, err, "run %d", i)
		require.Equal(t, fmt.Sprintf("%d approved by ann", 4*i), got, "run %d", i)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, ran, 2*runs, "activity steps ran")
	for key, n := range ran {
		assert.Equal(t, 1, n, "activity %s: want it run once", key)
	}
}
