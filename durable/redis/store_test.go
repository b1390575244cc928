package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

func open(t *testing.T, url string, opts ...redis.Option) *redis.Store {
	t.Helper()
	s, err := redis.Open(url, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func mustCreate(t *testing.T, s *redis.Store, id string) {
	t.Helper()
	_, _, err := s.CreateRun(t.Context(), backend.RunInfo{ID: id, Workflow: "wf"}, []byte(id+"/1"))
	require.NoError(t, err)
}

// pollNow returns a ready task, if any, without blocking.
func pollNow(t *testing.T, s *redis.Store) (backend.Task, bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	task, err := s.Poll(ctx, "w")
	if !errors.Is(err, context.Canceled) {
		require.NoError(t, err)
	}
	return task, err == nil
}

// TestOpenACLUser connects as an ACL user whose keys are limited to the
// store's prefix: the store touches no other key.
func TestOpenACLUser(t *testing.T) {
	srv := redistest.Start(t)
	err := srv.Client().Do(t.Context(), "acl", "setuser", "cairn-worker", "on", ">s3cret", "~cairn:*", "resetchannels", "+@all").Err()
	require.NoError(t, err)
	url := strings.Replace(srv.URL(), "redis://", "redis://cairn-worker:s3cret@", 1)
	s := open(t, url, redis.WithClock(durabletest.NewClock(time.Unix(1e9, 0))))
	mustCreate(t, s, "r1")
	lease, err := s.Lease(t.Context(), "r1", "w1", time.Minute)
	require.NoError(t, err)
	task, ok := pollNow(t, s)
	require.True(t, ok, "Poll: want a task for r1")
	assert.Equal(t, "r1", task.RunID, "Poll: want a task for r1")
	require.NoError(t, s.Commit(t.Context(), backend.Commit{Lease: lease, Expect: 1, Events: [][]byte{[]byte("r1/2")},
		Run: backend.RunInfo{Status: backend.StatusCompleted}, Release: true}))
	runs, err := s.ListRuns(t.Context(), backend.RunFilter{Status: backend.StatusCompleted})
	require.NoError(t, err, "ListRuns")
	assert.Len(t, runs, 1, "ListRuns: want r1")

	wrong := open(t, strings.Replace(url, "s3cret", "wrong", 1))
	_, err = wrong.GetRun(t.Context(), "r1")
	assert.ErrorContains(t, err, "WRONGPASS", "GetRun with a wrong password")
	_, err = redis.Open("http://nowhere")
	assert.Error(t, err, "Open of an http URL")
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
	require.NoError(t, err)
	lease, err := s.Lease(ctx, "r1", "w1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Ack(ctx, task))
	var want []string
	commit := func(expect int64, events ...string) error {
		c := backend.Commit{Lease: lease, Expect: expect, Run: backend.RunInfo{Status: backend.StatusRunning}}
		for _, e := range events {
			c.Events = append(c.Events, []byte(e))
		}
		return s.Commit(ctx, c)
	}
	want = append(want, "r1/1")
	for i := 2; i <= 5; i++ {
		ev := fmt.Sprintf("r1/%d", i)
		require.NoError(t, commit(int64(i-1), ev))
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
	require.Error(t, commit(5, "lost"), "Commit with Redis down")
	srv.Restart() // scripts are gone: the store loads them again

	// go-redis fails fast for a moment after failed dials, then reconnects;
	// until then a call may fail with the last dial's error, even one that
	// follows a call that got through (the scripts' reload dials anew). A
	// commit that fails so never reached Redis: trying again is safe.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, commit(5, "r1/6"), "Commit after restart")
	}, 10*time.Second, 50*time.Millisecond, "store still failing 10s after the restart")
	want = append(want, "r1/6")
	history, err := s.ReadHistory(ctx, "r1", 1)
	require.NoError(t, err)
	require.Equal(t, want, strs(history), "history after restart")
	require.NoError(t, s.Send(ctx, "r1", []byte("m1")))
	select {
	case err := <-polled:
		require.NoError(t, err, "Poll across the restart")
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
	require.NoError(t, err)
	require.NoError(t, s.Ack(ctx, task))
	for i := range 5 {
		lease, err := s.Lease(ctx, "r1", "w", time.Minute)
		require.NoError(t, err)
		wake := time.Now().Add(50 * time.Millisecond)
		err = s.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Run: backend.RunInfo{WakeAt: wake}, Release: true})
		require.NoError(t, err)
		task, err = s.Poll(ctx, "w")
		require.NoError(t, err, "Poll: want a task for r1 at its wake time")
		require.Equal(t, "r1", task.RunID, "Poll: want a task for r1 at its wake time")
		late := time.Since(wake)
		t.Logf("wake %d: polled %v after the wake time", i, late)
		assert.GreaterOrEqual(t, late, time.Duration(0), "woken %v after the wake time; want on time", late)
		assert.LessOrEqual(t, late, 500*time.Millisecond, "woken %v after the wake time; want on time", late)
		require.NoError(t, s.Ack(ctx, task))
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
	require.NoError(t, err)
	// w1 waits for a timer in an hour and lets the run go.
	wake := clock.Now().Add(time.Hour)
	commit := backend.Commit{Lease: l1, Expect: 1, Run: backend.RunInfo{Status: backend.StatusWaiting, WakeAt: wake}, Release: true}
	require.NoError(t, s.Commit(ctx, commit))
	// A late copy of w1 writes again with the same, released lease: once
	// with a later wake time, once with none.
	for _, at := range []time.Time{wake.Add(time.Hour), {}} {
		stale := backend.Commit{Lease: l1, Expect: 1, Run: backend.RunInfo{Status: backend.StatusRunning, WakeAt: at}}
		require.ErrorIs(t, s.Commit(ctx, stale), backend.ErrFenced, "stale commit")
	}
	clock.Advance(time.Hour - time.Second)
	task, ok := pollNow(t, s)
	require.False(t, ok, "task %+v before the wake time", task)
	clock.Advance(time.Second)
	task, ok = pollNow(t, s)
	require.True(t, ok, "Poll at the wake time: want r1")
	require.Equal(t, "r1", task.RunID, "Poll at the wake time")
	drainAll(t, s)

	// w2 takes over and sets a wake time; w1's stale writes change nothing.
	l2, err := s.Lease(ctx, "r1", "w2", 10*time.Second)
	require.NoError(t, err)
	wake = clock.Now().Add(30 * time.Minute)
	require.NoError(t, s.Commit(ctx, backend.Commit{Lease: l2, Expect: 1, Run: backend.RunInfo{Status: backend.StatusWaiting, WakeAt: wake}}))
	stale := backend.Commit{Lease: l1, Expect: 1, Run: backend.RunInfo{Status: backend.StatusRunning, WakeAt: wake.Add(time.Hour)}}
	require.ErrorIs(t, s.Commit(ctx, stale), backend.ErrFenced, "stale commit")
	clock.Advance(30 * time.Minute)
	task, ok = pollNow(t, s)
	require.True(t, ok, "Poll at w2's wake time: want r1")
	assert.Equal(t, "r1", task.RunID, "Poll at w2's wake time")
}

func drainAll(t *testing.T, s *redis.Store) {
	t.Helper()
	for {
		task, ok := pollNow(t, s)
		if !ok {
			return
		}
		require.NoError(t, s.Ack(t.Context(), task))
	}
}

// TestRetention checks that an ended run's keys expire after the
// retention, and that a running run's keys do not.
func TestRetention(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redis.WithRetention(time.Hour))
	ctx := t.Context()
	for _, tc := range []struct {
		status backend.Status
		ttl    bool
	}{{backend.StatusRunning, false}, {backend.StatusCompleted, true}} {
		id := "ret-" + string(tc.status)
		mustCreate(t, s, id)
		lease, err := s.Lease(ctx, id, "w1", time.Minute)
		require.NoError(t, err)
		require.NoError(t, s.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Run: backend.RunInfo{Status: tc.status}, Release: true}))
		keys, err := srv.Client().Keys(ctx, "cairn:{r:"+id+"}:*").Result()
		require.NoError(t, err, "keys of %s", id)
		require.NotEmpty(t, keys, "keys of %s", id)
		for _, k := range keys {
			ttl := srv.Client().PTTL(ctx, k).Val()
			assert.Equal(t, tc.ttl, ttl > 0 && ttl <= time.Hour, "%s run: key %s has TTL %v; want an expiry within the retention: %v", tc.status, k, ttl, tc.ttl)
		}
	}
}

// TestInboxDeletedWhenEmptied: the commit that consumes the last entry of
// a run's inbox deletes the stream, and the next Send makes another whose
// ids go on after the last one given (a new stream would start again
// from the millisecond it is made in).
func TestInboxDeletedWhenEmptied(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	rdb := srv.Client()
	ctx := t.Context()
	const inbox = "cairn:{r:r1}:inbox"
	mustCreate(t, s, "r1")
	var ids []string
	expect := int64(1)
	for i := range 3 {
		require.NoError(t, s.Send(ctx, "r1", []byte(fmt.Sprint("m", i))))
		entries, err := s.ReadInbox(ctx, "r1")
		require.NoError(t, err)
		require.Len(t, entries, 1)
		ids = append(ids, entries[0].ID)
		lease, err := s.Lease(ctx, "r1", "w1", time.Minute)
		require.NoError(t, err)
		require.NoError(t, s.Commit(ctx, backend.Commit{Lease: lease, Expect: expect, Events: [][]byte{entries[0].Event},
			Consumed: []string{entries[0].ID}, Run: backend.RunInfo{Status: backend.StatusWaiting}, Release: true}))
		expect++
		assert.Zero(t, rdb.Exists(ctx, inbox).Val(), "the inbox after its last entry was consumed")
	}
	for i := 1; i < len(ids); i++ {
		assert.True(t, streamIDLess(t, ids[i-1], ids[i]), "ids %v", ids)
	}
}

// streamIDLess reports whether stream id a comes before b.
func streamIDLess(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y [2]uint64
	_, err := fmt.Sscanf(a, "%d-%d", &x[0], &x[1])
	require.NoError(t, err, a)
	_, err = fmt.Sscanf(b, "%d-%d", &y[0], &y[1])
	require.NoError(t, err, b)
	return x[0] < y[0] || x[0] == y[0] && x[1] < y[1]
}
