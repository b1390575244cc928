package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestWatchStreams: a run that nobody watches has no changes or commits
// stream, whatever it commits; a watch gives the run the stream it waits
// on, with an expiry of a few seconds, which the commit that ends the run
// leaves as it is (the run's other keys get the retention).
func TestWatchStreams(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	ctx := t.Context()
	s := redis.New(rdb, redis.WithRetention(time.Hour))
	t.Cleanup(func() { s.Close() })
	const changes, commits = "cairn:{r:r1}:changes", "cairn:{r:r1}:commits"

	info, _, err := s.CreateRun(ctx, backend.RunInfo{ID: "r1", Workflow: "wf"}, []byte("first"))
	require.NoError(t, err)
	lease, err := s.Lease(ctx, "r1", "w1", time.Minute)
	require.NoError(t, err)
	commit := func(expect int64, st backend.Status) {
		t.Helper()
		run := info
		run.Status = st
		require.NoError(t, s.Commit(ctx, backend.Commit{Lease: lease, Expect: expect, Events: [][]byte{[]byte("e")}, Run: run}))
	}
	commit(1, backend.StatusRunning)
	commit(2, backend.StatusWaiting)
	assert.Zero(t, rdb.Exists(ctx, changes, commits).Val(), "streams of a run nobody watched")

	info, err = s.GetRun(ctx, "r1")
	require.NoError(t, err)
	for _, watch := range []func(context.Context, string, int64) error{s.WatchRun, s.WatchCommits} {
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		require.ErrorIs(t, watch(wctx, "r1", info.Version), context.DeadlineExceeded)
		cancel()
	}
	for _, key := range []string{changes, commits} {
		ttl := rdb.PTTL(ctx, key).Val()
		assert.True(t, ttl > 0 && ttl <= 3*time.Second, "%s: expiry %v", key, ttl)
	}

	commit(3, backend.StatusCompleted)
	assert.Greater(t, rdb.PTTL(ctx, "cairn:{r:r1}:run").Val(), time.Minute, "the record's expiry: the retention")
	for _, key := range []string{changes, commits} {
		ttl := rdb.PTTL(ctx, key).Val()
		assert.True(t, ttl > 0 && ttl <= 3*time.Second, "%s after the run ended: expiry %v", key, ttl)
	}
}
