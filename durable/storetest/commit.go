package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Commits: fenced, positioned, atomic writes by the lease holder.

func testCommitAppends(e *env) {
	e.create("r1")
	l := e.lease("r1", "w1", time.Minute)
	e.commit(step(l, 1, "r1/2", "r1/3"))
	e.wantHistory("r1", 1, "r1/1", "r1/2", "r1/3")
	if n := e.get("r1").HistoryLen; n != 3 {
		e.t.Errorf("HistoryLen = %d; want 3", n)
	}
	e.commit(step(l, 3, "r1/4"))
	e.wantHistory("r1", 1, "r1/1", "r1/2", "r1/3", "r1/4")
}

// wantUnchanged fails if r1's record, history or inbox differ from before.
func (e *env) wantUnchanged(before backend.RunInfo, history []string, inbox int) {
	e.t.Helper()
	if d := diffRun(e.get("r1"), before); d != "" {
		e.t.Errorf("record changed by a rejected commit:\n%s", d)
	}
	e.wantHistory("r1", 1, history...)
	if n := len(e.inbox("r1")); n != inbox {
		e.t.Errorf("inbox has %d entries after a rejected commit; want %d", n, inbox)
	}
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
	if l2.Token <= l.Token {
		e.t.Errorf("token after release = %d; want more than %d", l2.Token, l.Token)
	}
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
	if d := diffRun(got, want); d != "" {
		e.t.Errorf("record after Commit:\n%s", d)
	}
	if got.Version <= orig.Version {
		e.t.Errorf("Version after Commit = %d; want more than %d", got.Version, orig.Version)
	}
	c = step(l, 2)
	c.Run.Version = 0
	e.commit(c)
	if v := e.get("r1").Version; v <= got.Version {
		e.t.Errorf("Version after second Commit = %d; want more than %d", v, got.Version)
	}
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
	if got := e.inbox("r1"); len(got) != 1 || string(got[0].Event) != "b" || got[0].ID != inbox[1].ID {
		e.t.Errorf("inbox after consuming a and c = %+v; want only b", got)
	}
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
		if ok != c.queued || ok && task.RunID != id {
			e.t.Errorf("%s: after release Poll = %+v, %v; want a task %v", c.name, task, ok, c.queued)
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
	if got := e.get("r1"); got.Generation != 1 || got.HistoryLen != 1 {
		e.t.Errorf("after NewHistory: generation %d, history length %d; want 1, 1", got.Generation, got.HistoryLen)
	}
	e.commitErr(step(l, 3, "x"), backend.ErrConflict)
	e.commit(step(l, 1, "new/2"))
	e.wantHistory("r1", 1, "new/1", "new/2")
	if g := e.get("r1").Generation; g != 1 {
		e.t.Errorf("generation after appending to the new history = %d; want 1", g)
	}
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
		case !errors.Is(err, backend.ErrConflict):
			e.t.Errorf("losing writer %d: %v; want ErrConflict", i, err)
		}
	}
	if winner < 0 {
		e.t.Fatal("no writer committed")
	}
	e.wantHistory("r1", 1, "r1/1", fmt.Sprint("writer ", winner))
}

func testWatcher(e *env) {
	w, ok := e.s.(backend.Watcher)
	if !ok {
		e.t.Skip("store does not implement backend.Watcher")
	}
	orig := e.create("r1")
	if err := w.WatchRun(e.ctx(), "r1", orig.Version-1); err != nil {
		e.t.Errorf("WatchRun with an old version: %v; want nil at once", err)
	}
	ctx, cancel := context.WithTimeout(e.ctx(), quiet)
	defer cancel()
	if err := w.WatchRun(ctx, "r1", orig.Version); !errors.Is(err, context.DeadlineExceeded) {
		e.t.Errorf("WatchRun of an unchanged run: %v; want context.DeadlineExceeded", err)
	}

	done := make(chan error, 1)
	ctx = e.ctx()
	go func() { done <- w.WatchRun(ctx, "r1", orig.Version) }()
	select {
	case err := <-done:
		e.t.Fatalf("WatchRun returned %v before the record changed", err)
	case <-time.After(quiet):
	}
	e.commit(step(e.lease("r1", "w1", time.Minute), 1, "r1/2"))
	if err := <-done; err != nil {
		e.t.Errorf("WatchRun after a commit: %v; want nil", err)
	}
}
