package storetest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Commits: fenced, positioned, atomic writes by the lease holder.

func testCommitAppends(e *env) {
	e.create("r1")
	l := e.lease("r1", "w1", time.Minute)
	e.commit(step(l, 1, "r1/2", "r1/3"))
	e.wantHistory("r1", 1, "r1/1", "r1/2", "r1/3")
	assert.Equal(e.t, int64(3), e.get("r1").HistoryLen, "HistoryLen")
	e.commit(step(l, 3, "r1/4"))
	e.wantHistory("r1", 1, "r1/1", "r1/2", "r1/3", "r1/4")
}

// wantUnchanged fails if r1's record, history or inbox differ from before.
func (e *env) wantUnchanged(before backend.RunInfo, history []string, inbox int) {
	e.t.Helper()
	assert.Equal(e.t, normalize(before), normalize(e.get("r1")), "record changed by a rejected commit")
	e.wantHistory("r1", 1, history...)
	assert.Len(e.t, e.inbox("r1"), inbox, "inbox after a rejected commit")
}

func testCommitConflict(e *env) {
	e.create("r1")
	e.send("r1", "m1")
	l := e.lease("r1", "w1", time.Minute)
	before := e.get("r1")
	for _, c := range []struct {
		expect     int64
		newHistory bool
	}{{0, false}, {2, false}, {0, true}} {
		commit := step(l, c.expect, "x")
		commit.NewHistory = c.newHistory
		commit.Consumed = []string{e.inbox("r1")[0].ID}
		commit.Release = true
		e.commitErr(commit, backend.ErrConflict)
		e.wantUnchanged(before, []string{"r1/1"}, 1)
	}
	e.commit(step(l, 1, "r1/2")) // the lease was not released
}

func testCommitFenced(e *env) {
	e.create("r1")
	e.send("r1", "m1")
	l1 := e.lease("r1", "w1", 10*time.Second)
	e.clock.Advance(11 * time.Second)
	l2 := e.lease("r1", "w2", 10*time.Second)
	before := e.get("r1")
	c := step(l1, 1, "stale")
	c.Consumed = []string{e.inbox("r1")[0].ID}
	e.commitErr(c, backend.ErrFenced)
	e.wantUnchanged(before, []string{"r1/1"}, 1)
	e.commit(step(l2, 1, "r1/2"))
	e.commitErr(step(l1, 2, "stale"), backend.ErrFenced)
}

func testCommitReleased(e *env) {
	e.create("r1")
	l := e.lease("r1", "w1", time.Minute)
	c := step(l, 1, "r1/2")
	c.Release = true
	e.commit(c)
	e.commitErr(step(l, 2, "r1/3"), backend.ErrFenced)
	l2 := e.lease("r1", "w2", time.Minute)
	assert.Greater(e.t, l2.Token, l.Token, "token after release")
	e.commit(step(l2, 2, "r1/3"))
}

func testCommitExpiredNotTaken(e *env) {
	e.create("r1")
	l := e.lease("r1", "w1", 10*time.Second)
	e.clock.Advance(11 * time.Second)
	e.commit(step(l, 1, "r1/2"))
}

// testCommitRecord checks which fields of Commit.Run are saved and which
// the store keeps or sets.
func testCommitRecord(e *env) {
	orig := e.createRun(backend.RunInfo{
		ID: "r1", Workflow: "wf", InputHash: "h", Status: backend.StatusPending,
		ParentID: "parent", ParentStep: 2,
	}, []byte("r1/1"))
	l := e.lease("r1", "w1", time.Hour)
	e.clock.Advance(3 * time.Second)
	c := step(l, 1, "r1/2")
	c.Run = backend.RunInfo{
		// Kept or set by the store:
		ID: "other", Workflow: "other", InputHash: "other", ParentID: "other", ParentStep: 9,
		CreatedAt: never(), UpdatedAt: never(), Generation: 7, HistoryLen: 99, Version: 999,
		// Saved:
		Status: backend.StatusWaiting, Step: 4, Waiting: "signal approve",
		WakeAt:  e.clock.Now().Add(time.Hour),
		Failure: &backend.Failure{Message: "boom", Kind: backend.KindPanic},
	}
	e.commit(c)
	got := e.get("r1")
	want := c.Run
	want.ID, want.Workflow, want.InputHash = orig.ID, orig.Workflow, orig.InputHash
	want.ParentID, want.ParentStep, want.CreatedAt = orig.ParentID, orig.ParentStep, orig.CreatedAt
	want.Generation, want.HistoryLen, want.UpdatedAt = orig.Generation, 2, e.clock.Now()
	want.Version = got.Version
	assert.Equal(e.t, normalize(want), normalize(got), "record after Commit")
	assert.Greater(e.t, got.Version, orig.Version, "Version after Commit")
	c = step(l, 2)
	c.Run.Version = 0
	e.commit(c)
	assert.Greater(e.t, e.get("r1").Version, got.Version, "Version after second Commit")
}

// never is a time no store should produce.
func never() time.Time { return time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) }

func testCommitConsumed(e *env) {
	e.create("r1")
	for _, m := range []string{"a", "b", "c"} {
		e.send("r1", m)
	}
	inbox := e.inbox("r1")
	c := step(e.lease("r1", "w1", time.Minute), 1, "got a", "got c")
	c.Consumed = []string{inbox[0].ID, inbox[2].ID}
	e.commit(c)
	got := e.inbox("r1")
	require.Len(e.t, got, 1, "inbox after consuming a and c: want only b")
	assert.Equal(e.t, "b", string(got[0].Event), "inbox after consuming a and c")
	assert.Equal(e.t, inbox[1].ID, got[0].ID, "inbox after consuming a and c: the id of b")
	assert.Equal(e.t, 1, e.get("r1").Inbox, "RunInfo.Inbox after consuming a and c")
	e.send("r1", "d")
	assert.Equal(e.t, 2, e.get("r1").Inbox, "RunInfo.Inbox after sending d")
}

// testCommitAwaiting checks that a commit saves Run.Awaiting with the
// record, and a commit without one clears it; and, of a store that is a
// backend.AwaitingLister, that ListAwaiting lists exactly the runs whose
// last commit saved one, whatever their status, oldest first.
func testCommitAwaiting(e *env) {
	t0 := e.clock.Now()
	leases := map[string]backend.Lease{}
	for i, id := range []string{"a", "b", "c", "d"} {
		e.createRun(backend.RunInfo{ID: id, Workflow: "wf", Status: backend.StatusPending, CreatedAt: t0.Add(time.Duration(i) * time.Second)}, []byte("first"))
		leases[id] = e.lease(id, "w1", time.Minute)
	}
	awaiting := func(id, status string) backend.Commit {
		c := step(leases[id], 1)
		c.Run.Status = backend.Status(status)
		c.Run.Awaiting = []byte(`{"v":1,"payload":{"run":"` + id + `"}}`)
		return c
	}
	e.commit(awaiting("a", string(backend.StatusAwaitingApproval)))
	e.commit(awaiting("b", string(backend.StatusWaiting)))
	e.commit(awaiting("c", string(backend.StatusRunning)))
	e.commit(step(leases["d"], 1))
	lister, _ := e.s.(backend.AwaitingLister)
	listed := func() []string {
		if lister == nil {
			return nil
		}
		runs, err := lister.ListAwaiting(e.ctx())
		require.NoError(e.t, err)
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.ID)
			full := e.get(r.ID)
			assert.Equal(e.t, backend.RunInfo{ID: full.ID, Workflow: full.Workflow, Status: full.Status, CreatedAt: r.CreatedAt,
				Awaiting: full.Awaiting, Inbox: full.Inbox}, r, "ListAwaiting's record of %s", r.ID)
			assert.True(e.t, full.CreatedAt.Equal(r.CreatedAt), "ListAwaiting's CreatedAt of %s", r.ID)
		}
		return ids
	}
	want := func(ids ...string) []string {
		if lister == nil {
			return nil
		}
		return ids
	}
	assert.Equal(e.t, want("a", "b", "c"), listed(), "runs awaiting")
	assert.JSONEq(e.t, `{"v":1,"payload":{"run":"a"}}`, string(e.get("a").Awaiting), "GetRun's Awaiting")
	assert.Empty(e.t, e.get("d").Awaiting, "a run whose commits set no Awaiting")

	// b's next commit has none: it is no longer listed. a's has one
	// again, changed; then a ends without one.
	e.commit(step(leases["b"], 1))
	c := awaiting("a", string(backend.StatusAwaitingApproval))
	c.Expect = 1
	c.Run.Awaiting = []byte(`{"v":1,"payload":{"run":"a"}}`)
	e.commit(c)
	assert.Equal(e.t, want("a", "c"), listed(), "runs awaiting after b's commit without")
	e.send("c", "m")
	assert.Equal(e.t, want("a", "c"), listed(), "runs awaiting after a message to c (its Inbox counts it)")
	done := step(leases["a"], 1)
	done.Run.Status = backend.StatusCompleted
	e.commit(done)
	assert.Equal(e.t, want("c"), listed(), "runs awaiting after a ended")
	assert.Empty(e.t, e.get("b").Awaiting, "Awaiting after a commit without one")
}

func testReleaseRequeues(e *env) {
	cases := []struct {
		name    string
		consume bool
		status  backend.Status
		queued  bool
	}{
		{"inbox left", false, backend.StatusRunning, true},
		{"inbox consumed", true, backend.StatusRunning, false},
		{"parked", false, backend.StatusParked, false},
		{"ended", false, backend.StatusCompleted, false},
	}
	for i, c := range cases {
		id := fmt.Sprint("r", i)
		e.create(id)
		l := e.lease(id, "w1", time.Minute)
		e.send(id, "m1")
		e.drain()
		commit := step(l, 1)
		commit.Release = true
		commit.Run.Status = c.status
		if c.consume {
			commit.Consumed = []string{e.inbox(id)[0].ID}
		}
		e.commit(commit)
		task, ok := e.pollNow()
		assert.Equal(e.t, c.queued, ok, "%s: after release Poll gave a task", c.name)
		if ok {
			assert.Equal(e.t, id, task.RunID, "%s: after release Poll", c.name)
		}
		e.drain()
	}
}

func testWakeAt(e *env) {
	e.create("r1")
	e.drain()
	c := step(e.lease("r1", "w1", time.Minute), 1)
	c.Run.WakeAt = e.clock.Now().Add(10 * time.Second)
	c.Release = true
	e.commit(c)
	e.noTask("right after the commit")
	e.clock.Advance(9 * time.Second)
	e.noTask("a second before the wake time")
	e.clock.Advance(time.Second)
	e.expectTask("r1")
}

func testWakeAtPassed(e *env) {
	e.create("r1")
	e.drain()
	c := step(e.lease("r1", "w1", time.Minute), 1)
	c.Run.WakeAt = e.clock.Now().Add(-time.Second)
	e.commit(c)
	e.expectTask("r1")
}

func testWakeAtReplaced(e *env) {
	e.create("r1")
	e.drain()
	l := e.lease("r1", "w1", time.Hour)
	c := step(l, 1)
	c.Run.WakeAt = e.clock.Now().Add(10 * time.Second)
	e.commit(c)
	c = step(l, 1)
	c.Run.WakeAt = e.clock.Now().Add(20 * time.Second)
	e.commit(c)
	e.clock.Advance(10 * time.Second)
	e.noTask("at the replaced wake time")
	e.clock.Advance(10 * time.Second)
	e.expectTask("r1")
}

func testWakeAtCleared(e *env) {
	e.create("r1")
	e.drain()
	l := e.lease("r1", "w1", time.Hour)
	c := step(l, 1)
	c.Run.WakeAt = e.clock.Now().Add(10 * time.Second)
	e.commit(c)
	e.commit(step(l, 1))
	e.clock.Advance(time.Minute)
	e.noTask("after a commit without a wake time")
}

func testNewHistory(e *env) {
	e.create("r1")
	l := e.lease("r1", "w1", time.Minute)
	e.commit(step(l, 1, "r1/2", "r1/3"))
	fresh := step(l, 1, "new/1")
	fresh.NewHistory = true
	e.commitErr(fresh, backend.ErrConflict) // Expect names the old length
	fresh.Expect = 3
	e.commit(fresh)
	e.wantHistory("r1", 1, "new/1")
	e.wantHistory("r1", 2)
	got := e.get("r1")
	assert.Equal(e.t, 1, got.Generation, "generation after NewHistory")
	assert.Equal(e.t, int64(1), got.HistoryLen, "history length after NewHistory")
	e.commitErr(step(l, 3, "x"), backend.ErrConflict)
	e.commit(step(l, 1, "new/2"))
	e.wantHistory("r1", 1, "new/1", "new/2")
	assert.Equal(e.t, 1, e.get("r1").Generation, "generation after appending to the new history")
}

// testConcurrentCommits races commits at the same position: exactly one
// may win.
func testConcurrentCommits(e *env) {
	e.create("r1")
	l := e.lease("r1", "w1", time.Minute)
	const n = 8
	ctx := e.ctx()
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = e.s.Commit(ctx, step(l, 1, fmt.Sprint("writer ", i)))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			e.t.Fatalf("writers %d and %d both committed at position 2", winner, i)
		case err == nil:
			winner = i
		default:
			assert.ErrorIs(e.t, err, backend.ErrConflict, "losing writer %d", i)
		}
	}
	require.GreaterOrEqual(e.t, winner, 0, "no writer committed")
	e.wantHistory("r1", 1, "r1/1", fmt.Sprint("writer ", winner))
}

func testWatcher(e *env) {
	w, ok := e.s.(backend.Watcher)
	if !ok {
		e.t.Skip("store does not implement backend.Watcher")
	}
	orig := e.create("r1")
	assert.NoError(e.t, w.WatchRun(e.ctx(), "r1", orig.Version-1), "WatchRun with an old version: want nil at once")
	assert.NoError(e.t, w.WatchRun(e.ctx(), "r1", orig.Version+5), "WatchRun with a version beyond the record's: want nil at once")
	ctx, cancel := context.WithTimeout(e.ctx(), quiet)
	defer cancel()
	assert.ErrorIs(e.t, w.WatchRun(ctx, "r1", orig.Version), context.DeadlineExceeded, "WatchRun of an unchanged run")
	assert.ErrorIs(e.t, w.WatchRun(e.ctx(), "r2", 1), backend.ErrRunNotFound, "WatchRun of an unknown run")

	// The commits before the last do not move the run on.
	watch := func(what string, commits ...backend.Commit) {
		e.t.Helper()
		e.watchEndsAt(what+": WatchRun", w.WatchRun, commits...)
	}
	l := e.lease("r1", "w1", time.Minute)
	record := func(c backend.Commit, st backend.Status, release bool) backend.Commit {
		c.Run.Status, c.Release = st, release
		return c
	}
	watch("the run starts", step(l, 1, "r1/2"))
	watch("the run lets go to wait, after steps",
		step(l, 2, "r1/3"), step(l, 3, "r1/4"), step(l, 4), record(step(l, 4, "r1/5"), backend.StatusWaiting, true))
	l = e.lease("r1", "w1", time.Minute)
	watch("the run waits again", record(step(l, 5, "r1/6"), backend.StatusWaiting, false))
	watch("the run runs again", step(l, 6, "r1/7"))
	c := step(l, 7, "r1-new/1")
	c.NewHistory = true
	watch("the run continues as new", c)
	watch("the run parks", record(step(l, 1), backend.StatusParked, false))
	watch("the run parks again", record(step(l, 1), backend.StatusParked, false))
	watch("the run is let go", step(l, 1, "r1-new/2"))
	watch("the run ends", step(l, 2, "r1-new/3"), record(step(l, 3, "r1-new/4"), backend.StatusCompleted, true))
}

func testCommitWatcher(e *env) {
	w, ok := e.s.(backend.Watcher)
	if !ok {
		e.t.Skip("store does not implement backend.Watcher")
	}
	orig := e.create("r1")
	assert.NoError(e.t, w.WatchCommits(e.ctx(), "r1", orig.Version-1), "WatchCommits with an old version: want nil at once")
	assert.NoError(e.t, w.WatchCommits(e.ctx(), "r1", orig.Version+5), "WatchCommits with a version beyond the record's: want nil at once")
	ctx, cancel := context.WithTimeout(e.ctx(), quiet)
	defer cancel()
	assert.ErrorIs(e.t, w.WatchCommits(ctx, "r1", orig.Version), context.DeadlineExceeded, "WatchCommits of an unchanged run")
	assert.ErrorIs(e.t, w.WatchCommits(e.ctx(), "r2", 1), backend.ErrRunNotFound, "WatchCommits of an unknown run")

	// Each commit, a step included, ends a WatchCommits from the version
	// before it.
	l := e.lease("r1", "w1", time.Minute)
	for i, c := range []backend.Commit{step(l, 1, "r1/2"), step(l, 2, "r1/3"), step(l, 3)} {
		e.watchEndsAt(fmt.Sprintf("commit %d: WatchCommits", i), w.WatchCommits, c)
	}
}

// watchEndsAt starts a watch of run r1 from its record's version now,
// applies the commits, checking before each that the watch still waits,
// and checks that the watch returns nil after the last.
func (e *env) watchEndsAt(what string, watch func(ctx context.Context, runID string, version int64) error, commits ...backend.Commit) {
	e.t.Helper()
	done := make(chan error, 1)
	version := e.get("r1").Version
	go func() { done <- watch(e.ctx(), "r1", version) }()
	for _, c := range commits {
		select {
		case err := <-done:
			e.t.Fatalf("%s returned %v before the commit it waits for", what, err)
		case <-time.After(quiet):
		}
		e.commit(c)
	}
	select {
	case err := <-done:
		assert.NoError(e.t, err, what)
	case <-time.After(10 * time.Second):
		e.t.Fatalf("%s did not return", what)
	}
}
