package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

func open(t *testing.T, url string, opts ...redis.Option) *redis.Store {
	t.Helper()
	s, err := redis.Open(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustCreate(t *testing.T, s *redis.Store, id string) {
	t.Helper()
	if _, _, err := s.CreateRun(t.Context(), durable.RunInfo{ID: id, Workflow: "wf"}, []byte(id+"/1")); err != nil {
		t.Fatal(err)
	}
}

// pollNow returns a ready task, if any, without blocking.
func pollNow(t *testing.T, s *redis.Store) (durable.Task, bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	task, err := s.Poll(ctx, "w")
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	return task, err == nil
}

// TestOpenACLUser connects as an ACL user whose keys are limited to the
// store's prefix: the store touches no other key.
func TestOpenACLUser(t *testing.T) {
	srv := redistest.Start(t)
	err := srv.Client().Do(t.Context(), "acl", "setuser", "cairn-worker", "on", ">s3cret", "~cairn:*", "resetchannels", "+@all").Err()
	if err != nil {
		t.Fatal(err)
	}
	url := strings.Replace(srv.URL(), "redis://", "redis://cairn-worker:s3cret@", 1)
	s := open(t, url, redis.WithClock(durabletest.NewClock(time.Unix(1e9, 0))))
	mustCreate(t, s, "r1")
	lease, err := s.Lease(t.Context(), "r1", "w1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	task, ok := pollNow(t, s)
	if !ok || task.RunID != "r1" {
		t.Fatalf("Poll = %+v, %v; want a task for r1", task, ok)
	}
	if err := s.Commit(t.Context(), durable.Commit{Lease: lease, Expect: 1, Events: [][]byte{[]byte("r1/2")},
		Run: durable.RunInfo{Status: durable.StatusCompleted}, Release: true}); err != nil {
		t.Fatal(err)
	}
	if runs, err := s.ListRuns(t.Context(), durable.RunFilter{Status: durable.StatusCompleted}); err != nil || len(runs) != 1 {
		t.Fatalf("ListRuns = %v, %v; want r1", runs, err)
	}

	wrong := open(t, strings.Replace(url, "s3cret", "wrong", 1))
	if _, err := wrong.GetRun(t.Context(), "r1"); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("GetRun with a wrong password: %v; want WRONGPASS", err)
	}
	if _, err := redis.Open("http://nowhere"); err == nil {
		t.Fatal("Open of an http URL: no error")
	}
}

// TestRedisRestart kills Redis (running with appendfsync always) in the
// middle of a run and starts it again: the store's next calls work by
// themselves, a blocked Poll recovers, and no committed event is lost.
func TestRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis restart test: kills and restarts redis-server and waits for the client to reconnect (about 3.5 s); run without -short")
	}
	ctx := t.Context()
	srv := redistest.Start(t, redistest.WithAOF())
	s := open(t, srv.URL())
	mustCreate(t, s, "r1")
	task, err := s.Poll(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	lease, err := s.Lease(ctx, "r1", "w1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, task); err != nil {
		t.Fatal(err)
	}
	var want []string
	commit := func(expect int64, events ...string) error {
		c := durable.Commit{Lease: lease, Expect: expect, Run: durable.RunInfo{Status: durable.StatusRunning}}
		for _, e := range events {
			c.Events = append(c.Events, []byte(e))
		}
		return s.Commit(ctx, c)
	}
	want = append(want, "r1/1")
	for i := 2; i <= 5; i++ {
		ev := fmt.Sprintf("r1/%d", i)
		if err := commit(int64(i-1), ev); err != nil {
			t.Fatal(err)
		}
		want = append(want, ev)
	}

	polled := make(chan error, 1)
	go func() {
		task, err := s.Poll(ctx, "w1")
		if err == nil && task.RunID != "r1" {
			err = fmt.Errorf("task for %q", task.RunID)
		}
		polled <- err
	}()
	time.Sleep(50 * time.Millisecond) // the Poll blocks in Redis
	srv.Kill()
	if err := commit(5, "lost"); err == nil {
		t.Fatal("Commit with Redis down: no error")
	}
	srv.Restart() // scripts are gone: the store loads them again

	// go-redis fails fast for a moment after failed dials, then reconnects.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := s.GetRun(ctx, "r1"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("store still failing 10s after the restart: %v", err)
		}
	}
	if err := commit(5, "r1/6"); err != nil {
		t.Fatalf("Commit after restart: %v", err)
	}
	want = append(want, "r1/6")
	history, err := s.ReadHistory(ctx, "r1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strs(history), " "); got != strings.Join(want, " ") {
		t.Fatalf("history after restart = %s; want %s", got, strings.Join(want, " "))
	}
	if err := s.Send(ctx, "r1", []byte("m1")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-polled:
		if err != nil {
			t.Fatalf("Poll across the restart: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Poll blocked across the restart did not return the task sent after it")
	}
}

func strs(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// TestWakeAtSystemClock checks that a blocked Poll returns at a wake time
// on real time, through the timer the store schedules, not at the end of
// a blocking read.
func TestWakeAtSystemClock(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	mustCreate(t, s, "r1")
	task, err := s.Poll(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, task); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		lease, err := s.Lease(ctx, "r1", "w", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		wake := time.Now().Add(50 * time.Millisecond)
		err = s.Commit(ctx, durable.Commit{Lease: lease, Expect: 1, Run: durable.RunInfo{WakeAt: wake}, Release: true})
		if err != nil {
			t.Fatal(err)
		}
		if task, err = s.Poll(ctx, "w"); err != nil || task.RunID != "r1" {
			t.Fatalf("Poll = %+v, %v; want a task for r1 at its wake time", task, err)
		}
		late := time.Since(wake)
		t.Logf("wake %d: polled %v after the wake time", i, late)
		if late < 0 || late > 500*time.Millisecond {
			t.Errorf("woken %v after the wake time; want on time", late)
		}
		if err := s.Ack(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStaleWriterKeepsWakeTime checks that a writer whose commits are
// fenced cannot move or clear the wake time of the run's current holder.
func TestStaleWriterKeepsWakeTime(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	clock := durabletest.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s := open(t, srv.URL(), redis.WithClock(clock))
	mustCreate(t, s, "r1")
	drainAll(t, s)
	l1, err := s.Lease(ctx, "r1", "w1", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// w1 waits for a timer in an hour and lets the run go.
	wake := clock.Now().Add(time.Hour)
	commit := durable.Commit{Lease: l1, Expect: 1, Run: durable.RunInfo{Status: durable.StatusWaiting, WakeAt: wake}, Release: true}
	if err := s.Commit(ctx, commit); err != nil {
		t.Fatal(err)
	}
	// A late copy of w1 writes again with the same, released lease: once
	// with a later wake time, once with none.
	for _, at := range []time.Time{wake.Add(time.Hour), {}} {
		stale := durable.Commit{Lease: l1, Expect: 1, Run: durable.RunInfo{Status: durable.StatusRunning, WakeAt: at}}
		if err := s.Commit(ctx, stale); !errors.Is(err, durable.ErrFenced) {
			t.Fatalf("stale commit: %v; want ErrFenced", err)
		}
	}
	clock.Advance(time.Hour - time.Second)
	if task, ok := pollNow(t, s); ok {
		t.Fatalf("task %+v before the wake time", task)
	}
	clock.Advance(time.Second)
	if task, ok := pollNow(t, s); !ok || task.RunID != "r1" {
		t.Fatalf("Poll at the wake time = %+v, %v; want r1", task, ok)
	}
	drainAll(t, s)

	// w2 takes over and sets a wake time; w1's stale writes change nothing.
	l2, err := s.Lease(ctx, "r1", "w2", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wake = clock.Now().Add(30 * time.Minute)
	if err := s.Commit(ctx, durable.Commit{Lease: l2, Expect: 1, Run: durable.RunInfo{Status: durable.StatusWaiting, WakeAt: wake}}); err != nil {
		t.Fatal(err)
	}
	stale := durable.Commit{Lease: l1, Expect: 1, Run: durable.RunInfo{Status: durable.StatusRunning, WakeAt: wake.Add(time.Hour)}}
	if err := s.Commit(ctx, stale); !errors.Is(err, durable.ErrFenced) {
		t.Fatalf("stale commit: %v; want ErrFenced", err)
	}
	clock.Advance(30 * time.Minute)
	if task, ok := pollNow(t, s); !ok || task.RunID != "r1" {
		t.Fatalf("Poll at w2's wake time = %+v, %v; want r1", task, ok)
	}
}

func drainAll(t *testing.T, s *redis.Store) {
	t.Helper()
	for {
		task, ok := pollNow(t, s)
		if !ok {
			return
		}
		if err := s.Ack(t.Context(), task); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRetention checks that an ended run's keys expire after the
// retention, and that a running run's keys do not.
func TestRetention(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redis.WithRetention(time.Hour))
	ctx := t.Context()
	for _, tc := range []struct {
		status durable.Status
		ttl    bool
	}{{durable.StatusRunning, false}, {durable.StatusCompleted, true}} {
		id := "ret-" + string(tc.status)
		mustCreate(t, s, id)
		lease, err := s.Lease(ctx, id, "w1", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, durable.Commit{Lease: lease, Expect: 1, Run: durable.RunInfo{Status: tc.status}, Release: true}); err != nil {
			t.Fatal(err)
		}
		keys, err := srv.Client().Keys(ctx, "cairn:{r:"+id+"}:*").Result()
		if err != nil || len(keys) == 0 {
			t.Fatalf("keys of %s: %v, %v", id, keys, err)
		}
		for _, k := range keys {
			ttl := srv.Client().PTTL(ctx, k).Val()
			if tc.ttl != (ttl > 0 && ttl <= time.Hour) {
				t.Errorf("%s run: key %s has TTL %v", tc.status, k, ttl)
			}
		}
	}
}
