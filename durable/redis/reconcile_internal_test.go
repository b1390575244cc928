package redis

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestReconcilePagesGoRound has the background reconciler's passes, a
// page of 2 runs each, go through a partition's 5 runs from where the last
// pass stopped, and round again.
func TestReconcilePagesGoRound(t *testing.T) {
	srv := redistest.Start(t)
	clock := durabletest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := Open(srv.URL(), WithClock(clock), WithPartitions(1), WithReconcileInterval(-1))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	for i := range 5 {
		_, _, err := s.CreateRun(ctx, backend.RunInfo{ID: fmt.Sprint("r", i), Workflow: "wf"}, []byte("first"))
		require.NoError(t, err)
	}
	_, err = s.Reconcile(ctx) // writes the partition's marker
	require.NoError(t, err)
	keys := s.parts[0].keys
	require.NoError(t, srv.Client().Del(ctx, keys.tasks, keys.queued, keys.deadlines).Err())
	clock.Advance(time.Minute) // past the visibility timeout

	var queued []int
	for range 4 {
		st, err := s.reconcile(ctx, s.parts, 2)
		require.NoError(t, err)
		queued = append(queued, st.Queued)
	}
	assert.Equal(t, []int{2, 2, 1, 0}, queued, "runs queued by each pass of 2; the fourth rounds again to runs already queued")
	n, err := srv.Client().XLen(ctx, keys.tasks).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(5), n, "one task per run")
}
