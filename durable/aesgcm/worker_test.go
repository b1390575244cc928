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
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// TestWorkerWithoutKeyParks: a worker that lacks the key a run's history
// was sealed with parks the run, saying which key it needs, and does not
// fail it; given the key, the run resumes and completes.
func TestWorkerWithoutKeyParks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k0, k1 := key(t, "k0"), key(t, "k1")
	rotated := newCodec(t, k1, k0)
	stale := newCodec(t, k0)

	echo := durable.NewActivity("echo", func(ctx context.Context, s string) (string, error) { return "echo " + s, nil })
	wf := durable.NewWorkflow("pay", func(ctx durable.Context, s string) (string, error) { return durable.Execute(ctx, echo, s) })
	store := inmem.New()
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
