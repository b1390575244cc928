package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// gateClock is a fake clock that can hold back one reading of the time:
// the caller gets the time the clock read, but only when the test lets it
// go, as if the scheduler had paused it right after it read the clock.
type gateClock struct {
	*durabletest.Clock

	mu         sync.Mutex
	held, free chan struct{}
}

func (c *gateClock) Now() time.Time {
	now := c.Clock.Now()
	c.mu.Lock()
	held, free := c.held, c.free
	c.held, c.free = nil, nil
	c.mu.Unlock()
	if held != nil {
		close(held)
		<-free
	}
	return now
}

// holdNext holds back the next reading of the clock: held is closed when
// a caller waits with it, and the caller goes on when free is closed.
func (c *gateClock) holdNext() (held <-chan struct{}, free chan<- struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held, c.free = make(chan struct{}), make(chan struct{})
	return c.held, c.free
}

// advanceWhileHeld advances the clock by d while the reading that holdNext
// held waits: it lets the reading go once the advance is over, or, if the
// store makes the advance wait for the reading's caller (the alarm that
// rings waits for the take that read the clock), after a while.
func advanceWhileHeld(clock *gateClock, d time.Duration, held <-chan struct{}, free chan<- struct{}) {
	<-held
	advanced := make(chan struct{})
	go func() {
		clock.Advance(d)
		close(advanced)
	}()
	select {
	case <-advanced:
	case <-time.After(100 * time.Millisecond):
	}
	close(free)
	<-advanced
}

// TestTaskStampedAfterAlarm checks that a Poll that read the clock before
// a visibility timeout passed does not deliver the task that the alarm
// then queued again, stamped with the time it read: its new visibility
// timeout would have passed already, and the next Poll would deliver the
// task a third time without the clock moving.
func TestTaskStampedAfterAlarm(t *testing.T) {
	srv := redistest.Start(t)
	clock := &gateClock{Clock: newClock()}
	s := open(t, srv.URL(), redis.WithClock(clock), redis.WithPartitions(1))
	mustCreate(t, s, "r1")
	first, ok := pollNow(t, s)
	require.True(t, ok, "Poll: want the task of r1")

	held, free := clock.holdNext()
	stale := make(chan backend.Task, 1)
	go func() {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		task, _ := s.Poll(ctx, "w") // holds back its reading of the clock
		stale <- task
	}()
	advanceWhileHeld(clock, redis.DefaultVisibilityTimeout+time.Second, held, free)

	var got []backend.Task
	if task := <-stale; task.ID != "" {
		got = append(got, task)
	}
	for range 3 {
		if task, ok := pollNow(t, s); ok {
			got = append(got, task)
		}
	}
	require.Len(t, got, 1, "tasks delivered after the visibility timeout passed once; want r1's, once")
	require.NotEqual(t, first.ID, got[0].ID, "want the task delivered again, with a new id")
	require.NoError(t, s.Ack(t.Context(), first))
	require.NoError(t, s.Ack(t.Context(), got[0]))
	clock.Advance(redis.DefaultVisibilityTimeout + time.Second)
	left, ok := pollNow(t, s)
	require.False(t, ok, "Poll = %+v after both deliveries were acknowledged; want nothing", left)
}

// TestAttemptStampedAfterAlarm is TestTaskStampedAfterAlarm for an
// activity queue.
func TestAttemptStampedAfterAlarm(t *testing.T) {
	srv := redistest.Start(t)
	clock := &gateClock{Clock: newClock()}
	s := open(t, srv.URL(), redis.WithClock(clock))
	pushActivity(t, s, "gpu", "render")
	first, ok := pollActivityNow(t, s, "gpu")
	require.True(t, ok, "PollActivity: want the attempt")

	held, free := clock.holdNext()
	stale := make(chan backend.ActivityTask, 1)
	go func() {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		task, _ := s.PollActivity(ctx, "w", []string{"gpu"}) // holds back its reading of the clock
		stale <- task
	}()
	advanceWhileHeld(clock, redis.DefaultVisibilityTimeout+time.Second, held, free)

	var got []backend.ActivityTask
	if task := <-stale; task.ID != "" {
		got = append(got, task)
	}
	for range 3 {
		if task, ok := pollActivityNow(t, s, "gpu"); ok {
			got = append(got, task)
		}
	}
	require.Len(t, got, 1, "attempts delivered after the visibility timeout passed once; want one")
	require.NotEqual(t, first.ID, got[0].ID, "want the attempt delivered again, with a new id")
	ackActivity(t, s, first)
	ackActivity(t, s, got[0])
	clock.Advance(redis.DefaultVisibilityTimeout + time.Second)
	left, ok := pollActivityNow(t, s, "gpu")
	require.False(t, ok, "PollActivity = %+v after both deliveries were acknowledged; want nothing", left)
}
