package durable

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/inmem"
)

// A worker that stops with a task it polled but will not execute gives the
// run back at once, instead of leaving the task to the store's visibility
// timeout (30 s). The stress runs of issue 20 found a run stuck that long:
// the task came while the observers of the run's previous write were still
// running, and the worker stopped while it waited for them.
func TestStoppingWorkerGivesTaskBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store := inmem.New()
	wf := NewWorkflow("echo", func(ctx Context, s string) (string, error) { return s, nil })
	client := NewClient(store, ClientOptions{})
	run, err := wf.Start(ctx, client, "r", "hello")
	require.NoError(t, err)

	stopping := NewWorker(store, WorkerOptions{ID: "stopping"})
	stopping.Register(wf)
	task, err := store.Poll(ctx, stopping.id)
	require.NoError(t, err)
	stopping.observing["r"] = make(chan struct{}) // observers of the run's last write still run
	stopped, stop := context.WithCancel(ctx)
	stop()
	stopping.slots <- struct{}{}
	stopping.dispatch(stopped, task, false)
	stopping.wg.Wait()

	other := NewWorker(store, WorkerOptions{ID: "other"})
	other.Register(wf)
	otherCtx, stopOther := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- other.Run(otherCtx) }()
	defer func() { stopOther(); assert.NoError(t, <-done) }()
	waitCtx, cancelWait := context.WithTimeout(ctx, 5*time.Second) // well within the 30 s visibility timeout
	defer cancelWait()
	got, err := run.Result(waitCtx)
	require.NoError(t, err, "the run waited for the stopped worker's task")
	assert.Equal(t, "hello", got)
}
