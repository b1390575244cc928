package inmem_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock backend.Clock) backend.Store {
		return inmem.New(inmem.WithClock(clock))
	})
}

// pollNow returns a ready task, if any, without blocking.
func pollNow(t *testing.T, s *inmem.Store) (backend.Task, bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	task, err := s.Poll(ctx, "w")
	return task, err == nil
}

func TestPollDeduplicates(t *testing.T) {
	ctx := t.Context()
	s := inmem.New()
	_, _, err := s.CreateRun(ctx, backend.RunInfo{ID: "r1"}, []byte("first"))
	require.NoError(t, err)
	for range 2 {
		require.NoError(t, s.Send(ctx, "r1", []byte("m")))
	}
	task, ok := pollNow(t, s)
	require.True(t, ok, "Poll: want a task for r1")
	assert.Equal(t, "r1", task.RunID)
	task, ok = pollNow(t, s)
	assert.False(t, ok, "second Poll = %+v; want no task: the run was queued once", task)
}

func TestWithVisibilityTimeout(t *testing.T) {
	ctx := t.Context()
	clock := durabletest.NewClock(time.Unix(0, 0))
	s := inmem.New(inmem.WithClock(clock), inmem.WithVisibilityTimeout(5*time.Second))
	_, _, err := s.CreateRun(ctx, backend.RunInfo{ID: "r1"}, []byte("first"))
	require.NoError(t, err)
	_, ok := pollNow(t, s)
	require.True(t, ok, "no task after CreateRun")
	clock.Advance(4 * time.Second)
	task, ok := pollNow(t, s)
	require.False(t, ok, "task %+v delivered again before the visibility timeout", task)
	clock.Advance(time.Second)
	_, ok = pollNow(t, s)
	assert.True(t, ok, "task not delivered again at the visibility timeout")
}

// TestWakeAtSystemClock checks that a blocked Poll returns at a wake time
// on real time, through the timer the store schedules.
func TestWakeAtSystemClock(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s := inmem.New()
	_, _, err := s.CreateRun(ctx, backend.RunInfo{ID: "r1"}, []byte("first"))
	require.NoError(t, err)
	task, err := s.Poll(ctx, "w")
	require.NoError(t, err)
	require.NoError(t, s.Ack(ctx, task))
	lease, err := s.Lease(ctx, "r1", "w", time.Minute)
	require.NoError(t, err)
	wake := time.Now().Add(20 * time.Millisecond)
	err = s.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Run: backend.RunInfo{WakeAt: wake}, Release: true})
	require.NoError(t, err)
	task, err = s.Poll(ctx, "w")
	now := time.Now()
	require.NoError(t, err, "Poll: want a task for r1 at its wake time")
	require.Equal(t, "r1", task.RunID, "Poll: want a task for r1 at its wake time")
	assert.False(t, now.Before(wake), "woken %v before the wake time", wake.Sub(now))
}
