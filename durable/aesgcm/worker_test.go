package aesgcm_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/aesgcm"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestWorkerWithoutKeyParks: a worker that lacks the key a run's history
// was sealed with parks the run, saying which key it needs, and does not
// fail it; given the key, the run resumes and completes. In memory and on
// a real redis-server.
func TestWorkerWithoutKeyParks(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Run("inmem", func(t *testing.T) { testWorkerWithoutKeyParks(t, inmem.New()) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		store, err := redis.Open(srv.URL(), redis.WithLogger(quiet))
		require.NoError(t, err)
		t.Cleanup(func() { store.Close() })
		testWorkerWithoutKeyParks(t, store)
	})
}

func testWorkerWithoutKeyParks(t *testing.T, store backend.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k0, k1 := key(t, "k0"), key(t, "k1")
	rotated := newCodec(t, k1, k0)
	stale := newCodec(t, k0)

	echo := durable.NewActivity("echo", func(ctx context.Context, s string) (string, error) { return "echo " + s, nil })
	wf := durable.NewWorkflow("pay", func(ctx durable.Context, s string) (string, error) { return durable.Execute(ctx, echo, s) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	client := durable.NewClient(store, durable.ClientOptions{Codec: rotated})
	run, err := wf.Start(ctx, client, "pay-1", "card 4242")
	require.NoError(t, err)

	w := durable.NewWorker(store, durable.WorkerOptions{Codec: stale, Logger: quiet})
	w.Register(wf)
	require.NoError(t, w.Drain(ctx))
	info, err := client.Describe(ctx, "pay-1")
	require.NoError(t, err)
	require.Equal(t, backend.StatusParked, info.Status, "parked, not failed")
	require.NotNil(t, info.Failure)
	assert.Contains(t, info.Failure.Message, `unknown key "k1"`)
	t.Log(info.Failure.Kind, info.Failure.Message)

	require.NoError(t, client.Resume(ctx, "pay-1"))
	w = durable.NewWorker(store, durable.WorkerOptions{Codec: rotated, Logger: quiet})
	w.Register(wf)
	require.NoError(t, w.Drain(ctx))
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "echo card 4242", got)
}

// TestWorkerWithoutKeyParksMidRun: a run that made progress with the key
// and is woken by a signal parks when a worker without the key picks it
// up, on a real redis-server, and finishes once resumed with the key.
func TestWorkerWithoutKeyParksMidRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := redistest.Start(t)
	store, err := redis.Open(srv.URL(), redis.WithLogger(quiet))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	k0, k1 := key(t, "k0"), key(t, "k1")
	rotated, stale := newCodec(t, k1, k0), newCodec(t, k0)

	echo := durable.NewActivity("echo", func(ctx context.Context, s string) (string, error) { return "echo " + s, nil })
	more := durable.NewSignal[string]("more")
	wf := durable.NewWorkflow("chat", func(ctx durable.Context, s string) (string, error) {
		first, err := durable.Execute(ctx, echo, s)
		if err != nil {
			return "", err
		}
		m, err := more.Receive(ctx)
		return first + " / " + m, err
	})
	worker := func(c *aesgcm.Codec) *durable.Worker {
		w := durable.NewWorker(store, durable.WorkerOptions{Codec: c, Logger: quiet})
		w.Register(wf)
		return w
	}
	client := durable.NewClient(store, durable.ClientOptions{Codec: rotated})
	run, err := wf.Start(ctx, client, "chat-1", "hello")
	require.NoError(t, err)
	require.NoError(t, worker(rotated).Drain(ctx))
	require.NoError(t, more.Send(ctx, client, "chat-1", "secret"))
	require.NoError(t, worker(stale).Drain(ctx))
	info, err := client.Describe(ctx, "chat-1")
	require.NoError(t, err)
	require.Equal(t, backend.StatusParked, info.Status, "parked, not failed")
	assert.Contains(t, info.Failure.Message, `unknown key "k1"`)

	require.NoError(t, client.Resume(ctx, "chat-1"))
	require.NoError(t, worker(rotated).Drain(ctx))
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "echo hello / secret", got)
}
