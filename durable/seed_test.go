package durable_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
)

// TestSeed seeds runs with a recorded history cut after its first step,
// while a worker runs: the seeded step is replayed from the journal, the
// others are executed, and a history that ends the run or that the code
// does not replay is refused or parked.
func TestSeed(t *testing.T) {
	var calls atomic.Int64
	step := durable.NewActivity("step", func(_ context.Context, i int) (string, error) {
		calls.Add(1)
		return fmt.Sprintf("s%d", i), nil
	}, durable.ActivityOptions{})
	wf := durable.NewWorkflow("three", func(ctx durable.Context, in string) (string, error) {
		out := in
		for i := range 3 {
			s, err := durable.Execute(ctx, step, i)
			if err != nil {
				return "", err
			}
			out += "-" + s
		}
		return out, nil
	})
	e := newEnv(t, wf)
	ctx := ctxT(t)
	run, err := wf.Start(ctx, e.client, "recorded", "x")
	require.NoError(t, err)
	got, err := run.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, "x-s0-s1-s2", got)
	recorded, err := run.History(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), calls.Load())

	// Cut after step 1's completion (run_started, scheduled, completed).
	require.Equal(t, backend.EventActivityCompleted, recorded[2].Type)
	require.Equal(t, 1, recorded[2].Step)
	calls.Store(0)
	require.NoError(t, e.client.Seed(ctx, "seeded", recorded[:3]))
	got, err = wf.Get(e.client, "seeded").Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "x-s0-s1-s2", got)
	assert.Equal(t, int64(2), calls.Load(), "only the steps after the seeded one are executed")
	h, err := e.client.History(ctx, "seeded")
	require.NoError(t, err)
	assert.Equal(t, recorded[2].Payload, h[2].Payload, "the seeded result is the recorded one")

	assert.ErrorIs(t, e.client.Seed(ctx, "seeded", recorded[:3]), durable.ErrRunExists, "seeding an existing run")
	assert.ErrorContains(t, e.client.Seed(ctx, "ended", recorded), "ends the run", "a whole history")
	assert.ErrorIs(t, e.client.Seed(ctx, "empty", nil), backend.ErrCorruptHistory, "no history")

	// Code that no longer calls "step" first parks the seeded run.
	other := durable.NewActivity("other", func(context.Context, int) (string, error) { return "o", nil }, durable.ActivityOptions{})
	changed := durable.NewWorkflow("three", func(ctx durable.Context, in string) (string, error) {
		return durable.Execute(ctx, other, 0)
	})
	e.start(changed)
	require.NoError(t, e.client.Seed(ctx, "diverged", recorded[:3]))
	info := e.waitStatus("diverged", backend.StatusParked)
	require.NotNil(t, info.Failure)
	assert.Equal(t, backend.KindNondeterminism, info.Failure.Kind, "failure %+v", info.Failure)
	assert.Contains(t, info.Failure.Message, "activity step (step 1)")
	// Parked, it stays so: its record's wake time does not queue it again.
	time.Sleep(50 * time.Millisecond)
	again, err := e.client.Describe(ctx, "diverged")
	require.NoError(t, err)
	assert.Equal(t, info.Version, again.Version, "a parked run is left alone")
}
