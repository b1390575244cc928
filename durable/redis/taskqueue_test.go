package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestQueuedActivities runs workflows whose activity goes to a task queue
// through two workers on two stores on one Redis, as two processes would
// run them: one owns the runs and never runs the activity, the other only
// serves the queue. Each run's first attempt fails and is retried through
// the queue; every run completes with the result the serving worker
// computed.
func TestQueuedActivities(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv := redistest.Start(t)
	ownerStore, serverStore := open(t, srv.URL()), open(t, srv.URL())
	const queue = "gpu {render} 日本"

	opts := durable.ActivityOptions{TaskQueue: queue, RetryPolicy: durable.RetryPolicy{InitialInterval: time.Millisecond}}
	// The owner's copy: the workflow refers to it; it must never run.
	render := durable.NewActivity("render", func(ctx context.Context, scene string) (string, error) {
		t.Errorf("render(%q) ran in the owning worker", scene)
		return "", errors.New("wrong worker")
	}, opts)
	var mu sync.Mutex
	attempts := map[string][]int{} // by idempotency key
	served := durable.NewActivity("render", func(ctx context.Context, scene string) (string, error) {
		info, _ := durable.ActivityInfoFrom(ctx)
		mu.Lock()
		defer mu.Unlock()
		attempts[info.IdempotencyKey] = append(attempts[info.IdempotencyKey], info.Attempt)
		if len(attempts[info.IdempotencyKey]) == 1 {
			return "", errors.New("GPU busy")
		}
		return "frame of " + scene, nil
	})
	film := durable.NewWorkflow("film", func(ctx durable.Context, scene string) (string, error) {
		return durable.Execute(ctx, render, scene)
	})

	owner := durable.NewWorker(ownerStore, durable.WorkerOptions{ID: "owner"})
	owner.Register(film)
	server := durable.NewWorker(serverStore, durable.WorkerOptions{ID: "gpu-server", TaskQueues: []string{queue}})
	server.RegisterActivities(served)
	workerCtx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, w := range []*durable.Worker{owner, server} {
		wg.Go(func() {
			assert.NoError(t, w.Run(workerCtx))
		})
	}
	defer func() {
		stopWorkers()
		wg.Wait()
	}()

	client := durable.NewClient(ownerStore, durable.ClientOptions{})
	const runs = 10
	for i := range runs {
		_, err := film.Start(ctx, client, fmt.Sprint("film-", i), fmt.Sprint("scene ", i))
		require.NoError(t, err)
	}
	for i := range runs {
		got, err := film.Get(client, fmt.Sprint("film-", i)).Result(ctx)
		require.NoError(t, err, "run %d", i)
		require.Equal(t, fmt.Sprint("frame of scene ", i), got, "run %d", i)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, attempts, runs, "activity steps the serving worker ran")
	for key, seen := range attempts {
		if assert.Len(t, seen, 2, "step %s: want two attempts, the first failed", key) {
			assert.NotEqual(t, seen[0], seen[1], "step %s ran attempts %v; want two attempts, the first failed", key, seen)
		}
	}
}
