package durable_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
)

// serve starts a worker that serves only the task queue "gpu".
func (e *env) serve(activities ...durable.ActivityDefinition) {
	w := durable.NewWorker(e.store, durable.WorkerOptions{Logger: quietLogger(), TaskQueues: []string{"gpu"}})
	w.RegisterActivities(activities...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx)
	}()
	e.t.Cleanup(func() { cancel(); <-done })
}

func TestQueuedActivities(t *testing.T) {
	gpu := durable.ActivityOptions{TaskQueue: "gpu", RetryPolicy: durable.RetryPolicy{InitialInterval: time.Millisecond}}
	// The owner's copy: the workflow refers to it; it must never run here.
	render := durable.NewActivity("render", func(ctx context.Context, scene string) (string, error) {
		panic("render ran in the owning worker")
	}, gpu)
	var attempts atomic.Int32
	var keys []string
	remoteRender := durable.NewActivity("render", func(ctx context.Context, scene string) (string, error) {
		info, _ := durable.ActivityInfoFrom(ctx)
		keys = append(keys, info.IdempotencyKey)
		if attempts.Add(1) == 1 {
			return "", errors.New("GPU busy")
		}
		return "frame of " + scene, nil
	})
	wf := durable.NewWorkflow("film", func(ctx durable.Context, scene string) (string, error) {
		return durable.Execute(ctx, render, scene)
	})
	e := newEnv(t, wf)
	e.serve(remoteRender)
	ctx := ctxT(t)
	run, _ := wf.Start(ctx, e.client, "film", "sunrise")
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "frame of sunrise", got)
	assert.Equal(t, []string{"film/0/1", "film/0/1"}, keys, "the attempts' idempotency keys")
}

func TestQueuedActivityTimesOutWithoutServer(t *testing.T) {
	render := durable.NewActivity("render", func(ctx context.Context, scene string) (string, error) { return scene, nil },
		durable.ActivityOptions{TaskQueue: "gpu", StartToCloseTimeout: 10 * time.Millisecond, RetryPolicy: durable.RetryPolicy{MaximumAttempts: 1}})
	wf := durable.NewWorkflow("film", func(ctx durable.Context, scene string) (string, error) {
		return durable.Execute(ctx, render, scene)
	})
	e := newEnv(t, wf) // nobody serves "gpu"
	ctx := ctxT(t)
	run, _ := wf.Start(ctx, e.client, "film", "sunrise")
	_, err := run.Result(ctx)
	assert.ErrorIs(t, err, durable.ErrTimeout, "want a timeout of the queued attempt")
	assert.ErrorContains(t, err, "no result from task queue gpu")
}

func TestQueuedActivityNotRegistered(t *testing.T) {
	render := durable.NewActivity("render", func(ctx context.Context, scene string) (string, error) { return scene, nil },
		durable.ActivityOptions{TaskQueue: "gpu", RetryPolicy: durable.RetryPolicy{MaximumAttempts: 2, InitialInterval: time.Millisecond}})
	other := durable.NewActivity("other", func(ctx context.Context, s string) (string, error) { return s, nil })
	wf := durable.NewWorkflow("film", func(ctx durable.Context, scene string) (string, error) {
		return durable.Execute(ctx, render, scene)
	})
	e := newEnv(t, wf)
	e.serve(other)
	ctx := ctxT(t)
	run, _ := wf.Start(ctx, e.client, "film", "sunrise")
	_, err := run.Result(ctx)
	assert.ErrorIs(t, err, durable.ErrUnregistered)
}
