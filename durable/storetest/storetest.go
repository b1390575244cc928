// Package storetest is the conformance suite of backend.Store: a store is
// done when it passes Run, as a file system is when it passes
// testing/fstest.TestFS.
//
// Each subtest gets a new store built around a fake clock (the clock of
// durabletest.Clock, which needs no engine) that only the suite moves, so wake times, lease expiries and redelivery are tested
// without sleeping. A store must therefore take every time it compares or
// records from the clock it is given, and schedule its own wake-ups with
// the clock's AfterFunc. Events are arbitrary bytes: a store must not
// interpret them.
//
// Where backend.Store leaves a choice open, the suite holds stores to
// these readings:
//
//   - An unacknowledged task is delivered again once VisibilityTimeout of
//     clock time has passed, and not before the clock moves.
//   - CreateRun fills a zero CreatedAt with the clock's time and sets
//     UpdatedAt, HistoryLen (1) and a Version of at least 1.
//   - ListRuns orders records by CreatedAt, newest first, and records
//     created at the same time by ID, greatest first.
//   - A lease is expired once the clock reaches its Expires. An expired
//     lease is free even to the worker that held it: taking it again gives
//     a new, greater token.
//   - A lease that expired is still the run's current lease until another
//     Lease call takes it, so its holder can still commit.
//   - A run whose lease was released is not queued when the lease's
//     expiry time passes.
//   - A run is queued when the clock reaches Run.WakeAt, or at once if
//     WakeAt has passed already.
//   - ReadInbox on an unknown run returns an error wrapping
//     backend.ErrRunNotFound.
//   - Feed ids compare as strings in the order the entries were
//     published, however many share a millisecond.
//   - ReadFeed with a done context returns the entries that are ready,
//     as Poll does, and the context's error only if there are none; a
//     ReadFeed that waits returns within a few seconds of its context
//     being canceled.
//   - ReadFeed with an after that is no id of the store's form ("bogus",
//     "-") returns an error at once.
//   - PutBlobs with an empty key is refused, with none of its blobs
//     written; a PutBlobs to a run that does not exist creates nothing.
//
// The suite cannot see a store's retention: that a run's archive expires
// with it is for each store's own tests (durable/redis has them).
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/internal/fakeclock"
)

// VisibilityTimeout is the most clock time a store run by the suite may
// let pass before it delivers an unacknowledged task again.
const VisibilityTimeout = 30 * time.Second

const (
	// waitTimeout bounds, in real time, how long the suite waits for
	// something that must happen.
	waitTimeout = 10 * time.Second
	// quiet is how long, in real time, the suite watches for something
	// that must not happen yet.
	quiet = 50 * time.Millisecond
)

// Run runs the conformance suite against the stores that newStore
// returns. newStore is called once per subtest and must return an empty
// store that takes its time from clock; it may register cleanups with t.
func Run(t *testing.T, newStore func(t *testing.T, clock backend.Clock) backend.Store) {
	tests := []struct {
		name string
		fn   func(e *env)
	}{
		{"CreateRun/CreatesAndQueues", testCreateRun},
		{"CreateRun/DuplicateChangesNothing", testCreateRunDuplicate},
		{"UnknownRun", testUnknownRun},
		{"ListRuns", testListRuns},
		{"ReadHistory", testReadHistory},
		{"Send/KeepsOrderAndQueues", testSend},
		{"CopiesBytes", testCopiesBytes},
		{"Poll/ReturnsQueuedTasks", testPollQueued},
		{"Poll/BlocksUntilSend", testPollBlocks},
		{"Poll/WakesAtWakeTime", testPollWakes},
		{"Poll/DoneContextReturnsReadyTask", testPollDoneReady},
		{"Poll/DoneContextNothingReady", testPollDoneEmpty},
		{"Ack", testAck},
		{"Poll/RedeliversUnacked", testRedelivery},
		{"Lease/Acquire", testLeaseAcquire},
		{"Lease/SameWorkerExtends", testLeaseExtend},
		{"Lease/HeldByAnother", testLeaseHeld},
		{"Lease/ExpiredGivesGreaterToken", testLeaseExpired},
		{"Lease/ExpiredQueuesRun", testLeaseReclaim},
		{"Lease/ReleasedNotReclaimed", testLeaseReleased},
		{"Lease/TakenOver", testLeaseTakenOver},
		{"Commit/Appends", testCommitAppends},
		{"Commit/Conflict", testCommitConflict},
		{"Commit/FencedAfterTakeover", testCommitFenced},
		{"Commit/FencedAfterRelease", testCommitReleased},
		{"Commit/ExpiredLeaseNotTaken", testCommitExpiredNotTaken},
		{"Commit/Record", testCommitRecord},
		{"Commit/Consumed", testCommitConsumed},
		{"Commit/Awaiting", testCommitAwaiting},
		{"Commit/ReleaseRequeues", testReleaseRequeues},
		{"Commit/WakeAt", testWakeAt},
		{"Commit/WakeAtPassed", testWakeAtPassed},
		{"Commit/WakeAtReplaced", testWakeAtReplaced},
		{"Commit/WakeAtCleared", testWakeAtCleared},
		{"Commit/NewHistory", testNewHistory},
		{"Commit/Concurrent", testConcurrentCommits},
		{"Commit/DamagedHistory", testDamagedHistory},
		{"Watcher", testWatcher},
		{"Watcher/Commits", testCommitWatcher},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
			tt.fn(&env{t: t, s: newStore(t, clock), clock: clock})
		})
	}
	for _, tt := range activityTests {
		t.Run(tt.name, func(t *testing.T) {
			clock := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
			s := newStore(t, clock)
			q, ok := s.(backend.ActivityQueue)
			if !ok {
				t.Skip("the store has no activity queues")
			}
			tt.fn(&env{t: t, s: s, clock: clock}, q)
		})
	}
	for _, tt := range archiveTests {
		t.Run(tt.name, func(t *testing.T) {
			clock := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
			s := newStore(t, clock)
			a, ok := s.(backend.Archive)
			if !ok {
				t.Skip("the store has no archive")
			}
			tt.fn(&env{t: t, s: s, clock: clock}, a)
		})
	}
	t.Run("ExportMarker", func(t *testing.T) {
		clock := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
		s := newStore(t, clock)
		m, ok := s.(backend.ExportMarker)
		if !ok {
			t.Skip("the store records no span export marks")
		}
		testExportMarks(&env{t: t, s: s, clock: clock}, m)
	})
	for _, tt := range feedTests {
		t.Run(tt.name, func(t *testing.T) {
			clock := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
			s := newStore(t, clock)
			f, ok := s.(backend.Feed)
			if !ok {
				t.Skip("the store has no feeds")
			}
			tt.fn(&env{t: t, s: s, clock: clock}, f)
		})
	}
}

// env is what a subtest works with, and helpers that fail it.
type env struct {
	t     *testing.T
	s     backend.Store
	clock *fakeclock.Clock
}

// ctx returns a context that ends after waitTimeout.
func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(e.t.Context(), waitTimeout)
	e.t.Cleanup(cancel)
	return ctx
}

// create creates a pending run of workflow "wf" whose first event is
// id+"/1".
func (e *env) create(id string) backend.RunInfo {
	e.t.Helper()
	info := backend.RunInfo{ID: id, Workflow: "wf", InputHash: "hash-" + id, Status: backend.StatusPending}
	return e.createRun(info, []byte(id+"/1"))
}

func (e *env) createRun(info backend.RunInfo, first []byte) backend.RunInfo {
	e.t.Helper()
	got, created, err := e.s.CreateRun(e.ctx(), info, first)
	require.NoError(e.t, err, "CreateRun(%q)", info.ID)
	require.True(e.t, created, "CreateRun(%q): want created", info.ID)
	return got
}

func (e *env) get(id string) backend.RunInfo {
	e.t.Helper()
	info, err := e.s.GetRun(e.ctx(), id)
	require.NoError(e.t, err, "GetRun(%q)", id)
	return info
}

func (e *env) send(id, event string) {
	e.t.Helper()
	require.NoError(e.t, e.s.Send(e.ctx(), id, []byte(event)), "Send(%q, %q)", id, event)
}

func (e *env) inbox(id string) []backend.InboxEntry {
	e.t.Helper()
	entries, err := e.s.ReadInbox(e.ctx(), id)
	require.NoError(e.t, err, "ReadInbox(%q)", id)
	return entries
}

func (e *env) lease(id, worker string, ttl time.Duration) backend.Lease {
	e.t.Helper()
	l, err := e.s.Lease(e.ctx(), id, worker, ttl)
	require.NoError(e.t, err, "Lease(%q, %q)", id, worker)
	return l
}

func (e *env) commit(c backend.Commit) {
	e.t.Helper()
	require.NoError(e.t, e.s.Commit(e.ctx(), c), "Commit(expect %d, %d events)", c.Expect, len(c.Events))
}

// commitErr commits c and fails unless the error wraps want.
func (e *env) commitErr(c backend.Commit, want error) {
	e.t.Helper()
	require.ErrorIs(e.t, e.s.Commit(e.ctx(), c), want, "Commit(expect %d)", c.Expect)
}

// wantHistory fails unless the history of id from position from is want.
func (e *env) wantHistory(id string, from int64, want ...string) {
	e.t.Helper()
	got, err := e.s.ReadHistory(e.ctx(), id, from)
	require.NoError(e.t, err, "ReadHistory(%q, %d)", id, from)
	require.Equal(e.t, want, texts(got), "ReadHistory(%q, %d)", id, from)
}

// pollNow polls with a done context, so it returns a task only if one is
// ready.
func (e *env) pollNow() (backend.Task, bool) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	cancel()
	task, err := e.s.Poll(ctx, "worker-now")
	if err == nil {
		return task, true
	}
	require.ErrorIs(e.t, err, context.Canceled, "Poll with done context: want a task or context.Canceled")
	return backend.Task{}, false
}

// expectTask waits for a task and fails unless it is for runID.
func (e *env) expectTask(runID string) backend.Task {
	e.t.Helper()
	task, err := e.s.Poll(e.ctx(), "worker-wait")
	require.NoError(e.t, err, "Poll, waiting for a task for %q", runID)
	require.Equal(e.t, runID, task.RunID, "Poll: the task's run")
	return task
}

// noTask fails if a task is ready.
func (e *env) noTask(when string) {
	e.t.Helper()
	task, ok := e.pollNow()
	require.False(e.t, ok, "%s: Poll gave a task for %q; want none", when, task.RunID)
}

// drain polls and acknowledges every ready task.
func (e *env) drain() {
	e.t.Helper()
	for range 1000 {
		task, ok := e.pollNow()
		if !ok {
			return
		}
		e.ack(task)
	}
	e.t.Fatal("Poll still gives tasks after 1000 were acknowledged")
}

func (e *env) ack(task backend.Task) {
	e.t.Helper()
	require.NoError(e.t, e.s.Ack(e.ctx(), task), "Ack(%+v)", task)
}

// step is a commit by l of events after expect, with a running record.
func step(l backend.Lease, expect int64, evs ...string) backend.Commit {
	return backend.Commit{
		Lease:  l,
		Expect: expect,
		Events: events(evs...),
		Run:    backend.RunInfo{Status: backend.StatusRunning},
	}
}

func events(evs ...string) [][]byte {
	out := make([][]byte, len(evs))
	for i, ev := range evs {
		out[i] = []byte(ev)
	}
	return out
}

// texts returns events as strings, nil for none, to compare with the
// events a test wants.
func texts(evs [][]byte) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, string(ev))
	}
	return out
}

// normalize puts a record's times in UTC without monotonic readings, so
// that records compared with assert.Equal compare times as instants.
func normalize(r backend.RunInfo) backend.RunInfo {
	r.CreatedAt = r.CreatedAt.UTC()
	r.UpdatedAt = r.UpdatedAt.UTC()
	r.WakeAt = r.WakeAt.UTC()
	return r
}
