package redis_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// wipePartitions deletes the keys of every partition of the store with
// prefix "cairn" (task streams, deadlines, indexes, the reconciler's
// keys), or only those whose name ends in one of suffixes: what a Cluster
// node that holds them loses when it restarts without persistence, or
// what a failover to a lagging replica may lose.
func wipePartitions(t *testing.T, srv *redistest.Server, suffixes ...string) int {
	t.Helper()
	keys, err := srv.Client().Keys(t.Context(), "cairn:{p:*").Result()
	require.NoError(t, err)
	var doomed []string
	for _, k := range keys {
		if len(suffixes) == 0 || slices.ContainsFunc(suffixes, func(s string) bool { return len(k) > len(s) && k[len(k)-len(s):] == s }) {
			doomed = append(doomed, k)
		}
	}
	require.NotEmpty(t, doomed, "no partition keys to wipe")
	require.NoError(t, srv.Client().Del(t.Context(), doomed...).Err())
	return len(doomed)
}

// drainTasks polls without blocking until no task is ready, acknowledging each,
// and returns the runs of the tasks.
func drainTasks(t *testing.T, s *redis.Store) []string {
	t.Helper()
	var runs []string
	for {
		task, ok := pollNow(t, s)
		if !ok {
			slices.Sort(runs)
			return runs
		}
		require.NoError(t, s.Ack(t.Context(), task))
		runs = append(runs, task.RunID)
	}
}

// reconcileWorld is a store with runs in each state the reconciler looks
// at: pending, waiting on a timer an hour away, waiting with a message in
// its inbox, completed.
type reconcileWorld struct {
	srv     *redistest.Server
	s       *redis.Store
	clock   *durabletest.Clock
	pending []string
}

func newReconcileWorld(t *testing.T) *reconcileWorld {
	srv := redistest.Start(t)
	clock := durabletest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s := open(t, srv.URL(), redis.WithClock(clock), redis.WithVisibilityTimeout(100*time.Millisecond),
		redis.WithReconcileInterval(-1))
	w := &reconcileWorld{srv: srv, s: s, clock: clock}
	ctx := t.Context()
	for _, id := range []string{"p1", "p2", "p3", "p4", "p5"} {
		mustCreate(t, s, id)
		w.pending = append(w.pending, id)
	}
	release := func(id string, status backend.Status, wake time.Time) {
		mustCreate(t, s, id)
		lease, err := s.Lease(ctx, id, "w1", time.Minute)
		require.NoError(t, err)
		require.NoError(t, s.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Events: [][]byte{[]byte(id + "/2")},
			Run: backend.RunInfo{Status: status, WakeAt: wake}, Release: true}))
	}
	release("timer", backend.StatusWaiting, clock.Now().Add(time.Hour))
	release("inbox", backend.StatusWaiting, time.Time{})
	release("done", backend.StatusCompleted, time.Time{})
	require.NoError(t, s.Send(ctx, "inbox", []byte("approve")))
	// Every run was queued when it was created; the tasks are taken and
	// acknowledged, as by workers that are on them.
	assert.Equal(t, []string{"done", "inbox", "p1", "p2", "p3", "p4", "p5", "timer"}, drainTasks(t, s), "tasks before any loss")
	return w
}

// TestReconcileRecoversLostPartitions wipes every partition's keys, as a
// restart without persistence of the Cluster nodes that hold them would:
// Reconcile finds the runs from their records, rebuilds the indexes that
// ListRuns reads, queues the runs that need a worker and puts back the
// timer of the run that waits on one.
func TestReconcileRecoversLostPartitions(t *testing.T) {
	w := newReconcileWorld(t)
	ctx := t.Context()
	first, err := w.s.Reconcile(ctx)
	require.NoError(t, err)
	assert.Len(t, first.Recovered, redis.DefaultPartitions, "the first Reconcile finds no reconciler keys: it scans once")
	assert.Zero(t, first.Queued, "nothing was lost yet")
	assert.Zero(t, first.Deadlines, "nothing was lost yet")

	// The tasks were acknowledged, as if workers were on them: the runs
	// still need a worker (pending, a message in the inbox).
	wipePartitions(t, w.srv)
	w.clock.Advance(time.Second) // past the visibility timeout: what was delivered is not coming
	time.Sleep(150 * time.Millisecond)
	stats, err := w.s.Reconcile(ctx)
	require.NoError(t, err)
	assert.Len(t, stats.Recovered, redis.DefaultPartitions)
	assert.Equal(t, 8, stats.Scanned, "records found by the scan")
	assert.Equal(t, 6, stats.Queued, "the pending runs and the run with a message")
	assert.Equal(t, 1, stats.Deadlines, "the timer")

	assert.Equal(t, append([]string{"inbox"}, w.pending...), drainTasks(t, w.s), "tasks after the recovery")
	runs, err := w.s.ListRuns(ctx, backend.RunFilter{})
	require.NoError(t, err)
	assert.Len(t, runs, 8, "ListRuns after the recovery")
	done, err := w.s.ListRuns(ctx, backend.RunFilter{Status: backend.StatusCompleted})
	require.NoError(t, err)
	require.Len(t, done, 1, "ListRuns of completed runs after the recovery")
	assert.Equal(t, "done", done[0].ID)

	w.clock.Advance(time.Hour)
	assert.Equal(t, []string{"timer"}, drainTasks(t, w.s), "the timer's task")

	again, err := w.s.Reconcile(ctx)
	require.NoError(t, err)
	assert.Empty(t, again.Recovered, "nothing lost since")
}

// TestReconcileQueuesLostTasks loses the task streams, queued sets and
// deadlines but not the partitions' indexes, as a failover to a replica
// that lagged may: a regular pass, without a scan, puts them back.
func TestReconcileQueuesLostTasks(t *testing.T) {
	w := newReconcileWorld(t)
	ctx := t.Context()
	_, err := w.s.Reconcile(ctx)
	require.NoError(t, err)

	wipePartitions(t, w.srv, ":tasks", ":queued", ":deadlines")
	fresh, err := w.s.Reconcile(ctx)
	require.NoError(t, err)
	assert.Zero(t, fresh.Queued, "runs created or sent a message within the visibility timeout are left alone")
	assert.Equal(t, 1, fresh.Deadlines, "the timer, which nothing else would put back")

	w.clock.Advance(time.Second)
	time.Sleep(150 * time.Millisecond)
	stats, err := w.s.Reconcile(ctx)
	require.NoError(t, err)
	assert.Empty(t, stats.Recovered, "no scan")
	assert.Zero(t, stats.Scanned, "no scan")
	assert.Equal(t, 6, stats.Queued)
	assert.Zero(t, stats.Deadlines, "the timer stands")
	repeat, err := w.s.Reconcile(ctx)
	require.NoError(t, err)
	assert.Zero(t, repeat.Queued, "a second pass queues nothing: the tasks wait")
	assert.Zero(t, repeat.Deadlines)
	assert.Equal(t, append([]string{"inbox"}, w.pending...), drainTasks(t, w.s))
}

// TestReconcileExpiredLease loses the deadline of a lease whose worker
// then dies: the run is queued once the lease is a visibility timeout
// past its expiry, and its lease's deadline is put back while it runs.
func TestReconcileExpiredLease(t *testing.T) {
	srv := redistest.Start(t)
	clock := durabletest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s := open(t, srv.URL(), redis.WithClock(clock), redis.WithReconcileInterval(-1))
	ctx := t.Context()
	mustCreate(t, s, "r1")
	_, err := s.Reconcile(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"r1"}, drainTasks(t, s))
	_, err = s.Lease(ctx, "r1", "w1", time.Minute)
	require.NoError(t, err)
	wipePartitions(t, srv, ":deadlines")

	stats, err := s.Reconcile(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, stats.Deadlines, "the lease's deadline")
	assert.Zero(t, stats.Queued, "the lease holds")

	wipePartitions(t, srv, ":deadlines")
	clock.Advance(time.Minute + redis.DefaultVisibilityTimeout + time.Second)
	stats, err = s.Reconcile(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, stats.Queued, "the lease expired and nothing queued the run")
	assert.Equal(t, []string{"r1"}, drainTasks(t, s))
}

// TestReconcilerRunsInTheBackground has a worker blocked in Poll while
// every partition's keys are lost: the store's own reconciler finds the
// run and the Poll gets its task.
func TestReconcilerRunsInTheBackground(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redis.WithVisibilityTimeout(100*time.Millisecond),
		redis.WithReconcileInterval(50*time.Millisecond))
	mustCreate(t, s, "r1")
	assert.Equal(t, []string{"r1"}, drainTasks(t, s))
	wipePartitions(t, srv)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	task, err := s.Poll(ctx, "w")
	require.NoError(t, err, "Poll: the reconciler should have queued r1 again")
	assert.Equal(t, "r1", task.RunID)
}
