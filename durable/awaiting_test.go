package durable_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/aesgcm"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// TestSetAwaiting: what a workflow sets with SetAwaiting is saved with its
// record, through the codec, as the run goes from one wait to the next;
// nil clears it, and so does the run's end.
func TestSetAwaiting(t *testing.T) {
	next := durable.NewSignal[string]("next")
	wf := durable.NewWorkflow("asker", func(ctx durable.Context, _ int) (string, error) {
		var got string
		for _, ask := range []any{map[string]string{"ask": "first"}, []string{"second", "third"}, nil} {
			if err := durable.SetAwaiting(ctx, ask); err != nil {
				return "", err
			}
			s, err := next.Receive(ctx)
			if err != nil {
				return "", err
			}
			got += s
		}
		return got, durable.SetAwaiting(ctx, "left set at the end")
	})
	codec, err := aesgcm.New(aesgcm.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)})
	require.NoError(t, err)
	store := inmem.New()
	client := durable.NewClient(store, durable.ClientOptions{Codec: codec})
	w := durable.NewWorker(store, durable.WorkerOptions{Codec: codec, Logger: quietLogger()})
	w.Register(wf)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	run, err := wf.Start(ctx, client, "asker", 0)
	require.NoError(t, err)
	awaiting := func(want string) {
		t.Helper()
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			info, err := client.Describe(ctx, "asker")
			require.NoError(c, err)
			require.Equal(c, backend.StatusWaiting, info.Status)
			if want == "" {
				assert.Empty(c, info.Awaiting)
				return
			}
			assert.NotContains(c, string(info.Awaiting), "first", "the codec seals it")
			data, err := backend.DecodePayload(info.Awaiting, codec)
			require.NoError(c, err)
			assert.JSONEq(c, want, string(data))
		}, 10*time.Second, 2*time.Millisecond)
	}
	awaiting(`{"ask":"first"}`)
	require.NoError(t, next.Send(ctx, client, "asker", "a"))
	awaiting(`["second","third"]`)
	require.NoError(t, next.Send(ctx, client, "asker", "b"))
	awaiting("")
	require.NoError(t, next.Send(ctx, client, "asker", "c"))
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "abc", got)
	info, err := client.Describe(ctx, "asker")
	require.NoError(t, err)
	assert.Empty(t, info.Awaiting, "a run that ended awaits nothing")
}
