package redis

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestAwaitingIndex checks the awaiting index against what can go wrong
// around it: a commit that scores an entry again while ListRuns is about
// to drop it (the entry stays), and a partition that lost the index (the
// reconciler puts the entry back).
func TestAwaitingIndex(t *testing.T) {
	srv := redistest.Start(t)
	clock := durabletest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := Open(srv.URL(), WithClock(clock), WithPartitions(1), WithReconcileInterval(-1))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	_, _, err = s.CreateRun(ctx, backend.RunInfo{ID: "r1", Workflow: "wf"}, []byte("first"))
	require.NoError(t, err)
	lease, err := s.Lease(ctx, "r1", "w1", time.Minute)
	require.NoError(t, err)
	commit := func(awaiting string) {
		t.Helper()
		c := backend.Commit{Lease: lease, Expect: 1, Run: backend.RunInfo{Status: backend.StatusAwaitingApproval}}
		if awaiting != "" {
			c.Run.Awaiting = []byte(awaiting)
		}
		require.NoError(t, s.Commit(ctx, c))
	}
	index := s.parts[0].keys.awaiting()
	score := func() float64 {
		t.Helper()
		v, err := srv.Client().ZScore(ctx, index, "r1").Result()
		require.NoError(t, err, "the run's entry in the awaiting index")
		return v
	}

	commit(`{"v":1,"payload":1}`)
	read := score()
	// ListRuns read the entry; then a commit cleared the record's
	// Awaiting and another set it again, scoring the entry anew, before
	// ListRuns's removal: the removal must leave the entry.
	commit("")
	clock.Advance(time.Millisecond)
	commit(`{"v":1,"payload":2}`)
	removed, err := s.scripts.forget.Run(ctx, s.client, []string{index}, "r1", read).Int()
	require.NoError(t, err)
	assert.Zero(t, removed, "an entry scored again since it was read")
	removed, err = s.scripts.forget.Run(ctx, s.client, []string{index}, "r1", score()).Int()
	require.NoError(t, err)
	assert.Equal(t, 1, removed, "an entry as it was read")

	// The partition lost its index: a reconciler pass writes it again.
	_, err = s.Reconcile(ctx)
	require.NoError(t, err)
	runs, err := s.ListAwaiting(ctx)
	require.NoError(t, err)
	require.Len(t, runs, 1, "awaiting runs after the reconciler's pass")
	assert.JSONEq(t, `{"v":1,"payload":2}`, string(runs[0].Awaiting))

	// A commit without Awaiting: ListAwaiting drops the entry.
	commit("")
	runs, err = s.ListAwaiting(ctx)
	require.NoError(t, err)
	assert.Empty(t, runs)
	n, err := srv.Client().ZCard(ctx, index).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the stale entry is gone from the index")
}
