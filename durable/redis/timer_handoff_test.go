package redis_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestTimerAfterWorkerSwap stops a worker while its run waits on a
// durable timer, starts another worker on the same store at once, and
// checks that the timer fires about on time: a stopped worker's task
// readers must not keep what they read after it stopped polling. The run
// is idle (released, waiting on its timer) or busy (an activity runs
// beside the timer, so the stopping worker hands the run off).
func TestTimerAfterWorkerSwap(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprint("busy=", busy), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			srv := redistest.Start(t)
			store := open(t, srv.URL())

			// An activity that runs until its worker stops, and then at
			// once (as the attempt that runs again) on the next worker.
			var mu sync.Mutex
			attempts := 0
			block := durable.NewActivity("block", func(ctx context.Context, _ int) (int, error) {
				mu.Lock()
				attempts++
				first := attempts == 1
				mu.Unlock()
				if first {
					<-ctx.Done()
					return 0, ctx.Err()
				}
				return 1, nil
			})
			wf := durable.NewWorkflow("bake", func(ctx durable.Context, _ int) (string, error) {
				var f durable.Future[int]
				if busy {
					f = durable.StartActivity(ctx, block, 0)
				}
				if err := durable.Sleep(ctx, 700*time.Millisecond); err != nil {
					return "", err
				}
				if f != nil {
					if _, err := f.Get(ctx); err != nil {
						return "", err
					}
				}
				return "baked", nil
			})
			worker := func(id string) (stop func()) {
				w := durable.NewWorker(store, durable.WorkerOptions{ID: id, LeaseTTL: 5 * time.Second})
				w.Register(wf)
				wctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() {
					defer close(done)
					assert.NoError(t, w.Run(wctx))
				}()
				return func() {
					cancel()
					<-done
				}
			}

			stop := worker("first")
			client := durable.NewClient(store, durable.ClientOptions{})
			run, err := wf.Start(ctx, client, "pizza", 0)
			require.NoError(t, err)
			// Wait until the timer is journaled, then let 300 ms pass.
			var fireAt time.Time
			for fireAt.IsZero() {
				history, err := client.History(ctx, run.ID)
				require.NoError(t, err)
				for _, e := range history {
					if e.Type == backend.EventTimerStarted {
						fireAt = e.FireAt
					}
				}
				require.NoError(t, ctx.Err(), "no timer_started event")
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(time.Until(fireAt.Add(-400 * time.Millisecond)))
			stop()
			defer worker("second")()

			got, err := run.Result(ctx)
			require.NoError(t, err, "result")
			require.Equal(t, "baked", got, "result")
			history, err := client.History(ctx, run.ID)
			require.NoError(t, err)
			for _, e := range history {
				if e.Type == backend.EventTimerFired {
					late := e.Time.Sub(fireAt)
					t.Logf("timer due at %s fired %v late", fireAt.Format(time.StampMilli), late)
					assert.LessOrEqual(t, late, 500*time.Millisecond, "timer fired %v late; want it about on time", late)
					return
				}
			}
			t.Fatal("no timer_fired event")
		})
	}
}
