package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestQueuedActivityAfterWorkerSwap stops the worker that serves a task
// queue, starts another in its place at once (another process: another
// store), and checks that an attempt queued just after runs about at
// once: the stopped worker's reader, still blocked in Redis when it
// stopped, must not hold what it reads for nobody (it did, for a second).
func TestQueuedActivityAfterWorkerSwap(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv := redistest.Start(t)

	var mu sync.Mutex
	var ranAt time.Time
	bake := durable.NewActivity("bake", func(ctx context.Context, _ int) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if ranAt.IsZero() {
			ranAt = time.Now()
		}
		return "baked", nil
	}, durable.ActivityOptions{TaskQueue: "ovens"})
	const wait = 500 * time.Millisecond
	wf := durable.NewWorkflow("order", func(ctx durable.Context, _ int) (string, error) {
		if err := durable.Sleep(ctx, wait); err != nil {
			return "", err
		}
		return durable.Execute(ctx, bake, 0)
	})
	run := func(w *durable.Worker) (stop func()) {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			assert.NoError(t, w.Run(wctx))
		}()
		return func() { cancel(); <-done }
	}
	owner := durable.NewWorker(open(t, srv.URL()), durable.WorkerOptions{ID: "owner"})
	owner.Register(wf)
	defer run(owner)()
	server := func(id string) *durable.Worker {
		w := durable.NewWorker(open(t, srv.URL()), durable.WorkerOptions{ID: id, TaskQueues: []string{"ovens"}})
		w.RegisterActivities(bake)
		return w
	}
	stopFirst := run(server("first"))

	client := durable.NewClient(open(t, srv.URL()), durable.ClientOptions{})
	started := time.Now()
	r, err := wf.Start(ctx, client, "order-1", 0)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // the first server's reader blocks in Redis
	stopFirst()
	defer run(server("second"))()

	got, err := r.Result(ctx)
	require.NoError(t, err, "result")
	require.Equal(t, "baked", got, "result")
	mu.Lock()
	late := ranAt.Sub(started) - wait
	mu.Unlock()
	t.Logf("the attempt ran %v after it was due", late)
	assert.LessOrEqual(t, late, 700*time.Millisecond, "the attempt ran %v after it was due: the stopped worker's reader held it", late)
}
