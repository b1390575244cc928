package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

func newClock() *durabletest.Clock {
	return durabletest.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
}

func pushActivity(t *testing.T, s *redis.Store, queue, attempt string) {
	t.Helper()
	require.NoError(t, s.PushActivity(t.Context(), queue, []byte(attempt)), "PushActivity(%q)", queue)
}

// pollActivityNow returns a ready attempt of the queues, if any, without
// blocking.
func pollActivityNow(t *testing.T, s *redis.Store, queues ...string) (backend.ActivityTask, bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	task, err := s.PollActivity(ctx, "w", queues)
	if !errors.Is(err, context.Canceled) {
		require.NoError(t, err, "PollActivity(%q)", queues)
	}
	return task, err == nil
}

func ackActivity(t *testing.T, s *redis.Store, task backend.ActivityTask) {
	t.Helper()
	require.NoError(t, s.AckActivity(t.Context(), task), "AckActivity(%+v)", task)
}

// TestActivityQueueNames checks that queue names may hold any characters,
// braces (which end a hash tag) and unicode among them, and that queues
// whose keys share a slot share no attempts.
func TestActivityQueueNames(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redis.WithClock(newClock()))
	names := []string{"gpu", "gpu}", "gpu}b", "{gpu}", "{}", "}{", "{q:gpu}", "x}y{z", "日本語-キュー", "emoji-🍕", "sp ace", "a:b:c"}
	for _, name := range names {
		pushActivity(t, s, name, "for "+name)
	}
	for _, name := range names {
		task, ok := pollActivityNow(t, s, name)
		require.True(t, ok, "PollActivity(%q): nothing ready", name)
		require.Equal(t, name, task.Queue, "PollActivity(%q): queue", name)
		require.Equal(t, "for "+name, string(task.Attempt), "PollActivity(%q): attempt", name)
		again, ok := pollActivityNow(t, s, name)
		require.False(t, ok, "PollActivity(%q) again = %q from %q; want nothing", name, again.Attempt, again.Queue)
		ackActivity(t, s, task)
	}

	ctx := t.Context()
	assert.Error(t, s.PushActivity(ctx, "", []byte("x")), "PushActivity to an empty queue name")
	for _, queues := range [][]string{nil, {""}, {"gpu", ""}} {
		_, err := s.PollActivity(ctx, "w", queues)
		assert.Error(t, err, "PollActivity(%q)", queues)
		assert.NotErrorIs(t, err, context.Canceled, "PollActivity(%q): want an error of its own", queues)
	}
	_, err := s.PollActivity(ctx, "", []string{"gpu"})
	assert.Error(t, err, "PollActivity by an empty worker name")
	assert.Error(t, s.AckActivity(ctx, backend.ActivityTask{Queue: "gpu", ID: "not an id"}), "AckActivity of a malformed id")
}

// TestPollActivityOldestFirst checks that PollActivity over several queues
// returns the attempt added first, whatever the order of the queues.
func TestPollActivityOldestFirst(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redis.WithClock(newClock()))
	for _, wait := range []bool{false, true} {
		for _, attempt := range []string{"b1", "c1", "a1", "b2", "a2"} {
			pushActivity(t, s, attempt[:1], attempt)
			time.Sleep(2 * time.Millisecond) // entry ids are in milliseconds
		}
		for _, want := range []string{"b1", "c1", "a1", "b2", "a2"} {
			var task backend.ActivityTask
			if wait {
				var err error
				task, err = s.PollActivity(t.Context(), "w", []string{"a", "b", "c"})
				require.NoError(t, err, "PollActivity(a, b, c)")
			} else {
				var ok bool
				task, ok = pollActivityNow(t, s, "a", "b", "c")
				require.True(t, ok, "PollActivity(a, b, c): nothing ready")
			}
			require.Equal(t, want, string(task.Attempt), "PollActivity(a, b, c)")
			ackActivity(t, s, task)
		}
	}
}

// TestActivityRedelivery checks that an attempt that another store took
// and never acknowledged reaches a PollActivity that waits for it when the
// visibility timeout passes: through the alarm of the store that delivered
// it, or, once that store is closed, through the alarm that the waiting
// store set for the deadlines it saw when it looked at the queue.
func TestActivityRedelivery(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	srv := redistest.Start(t)
	clock := newClock()
	waiter := open(t, srv.URL(), redis.WithClock(clock))
	for _, closeTaker := range []bool{false, true} {
		taker := open(t, srv.URL(), redis.WithClock(clock))
		pushActivity(t, taker, "gpu", "render")
		lost, ok := pollActivityNow(t, taker, "gpu")
		require.True(t, ok, "PollActivity: nothing ready")
		got := make(chan backend.ActivityTask, 1)
		go func() {
			task, err := waiter.PollActivity(ctx, "w", []string{"gpu"})
			assert.NoError(t, err)
			got <- task
		}()
		time.Sleep(50 * time.Millisecond) // the PollActivity waits
		if closeTaker {
			taker.Close()
		}
		start := time.Now()
		clock.Advance(redis.DefaultVisibilityTimeout)
		task := <-got
		t.Logf("taker closed %v: delivered again %v after the visibility timeout", closeTaker, time.Since(start))
		require.Equal(t, "render", string(task.Attempt), "PollActivity = %+v; want the attempt delivered again", task)
		require.NotEqual(t, lost.ID, task.ID, "PollActivity = %+v; want the attempt delivered again, with a new id", task)
		if !closeTaker {
			// A late acknowledgement of the first delivery changes nothing.
			ackActivity(t, taker, lost)
		}
		ackActivity(t, waiter, task)
		left, ok := pollActivityNow(t, waiter, "gpu")
		require.False(t, ok, "PollActivity = %+v; want nothing", left)
	}
}

// TestActivityHandedBack checks that an attempt a reader holds, read for a
// PollActivity that another queue served, goes back to its queue when no
// PollActivity takes it within a second, and when its store closes.
func TestActivityHandedBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	srv := redistest.Start(t)
	clock := newClock() // never moves: no visibility timeout passes
	// On a client it does not close, Close waits for the readers: what
	// one is reading as the store closes is handed back too.
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	holder := redis.New(client, redis.WithClock(clock))
	t.Cleanup(func() { holder.Close() })
	other := open(t, srv.URL(), redis.WithClock(clock))

	// hold makes one of holder's readers hold an attempt, and returns it.
	hold := func(attempt string) string {
		t.Helper()
		got := make(chan backend.ActivityTask, 1)
		go func() {
			task, err := holder.PollActivity(ctx, "w", []string{"a", "b"})
			assert.NoError(t, err)
			got <- task
		}()
		waitUntil(t, "both readers block in Redis", func() bool {
			info, err := srv.Client().Info(ctx, "clients").Result()
			return err == nil && strings.Contains(info, "blocked_clients:2\r\n")
		})
		pushActivity(t, other, "a", "a:"+attempt)
		pushActivity(t, other, "b", "b:"+attempt)
		served := <-got
		ackActivity(t, holder, served)
		held := "a:" + attempt
		if served.Queue == "a" {
			held = "b:" + attempt
		}
		waitUntil(t, "the other attempt is read", func() bool {
			n := 0
			for _, q := range []string{"a", "b"} {
				p, err := srv.Client().XPending(ctx, "cairn:{q:"+q+"}:attempts", "workers").Result()
				if err == nil {
					n += int(p.Count)
				}
			}
			return n == 1
		})
		return held
	}

	held := hold("1")
	var task backend.ActivityTask
	waitUntil(t, "the held attempt is handed back", func() bool {
		var ok bool
		task, ok = pollActivityNow(t, other, "a", "b")
		return ok
	})
	assert.Equal(t, held, string(task.Attempt), "PollActivity: want the held attempt")
	ackActivity(t, other, task)

	held = hold("2")
	holder.Close()
	task, ok := pollActivityNow(t, other, "a", "b")
	require.True(t, ok, "PollActivity after Close: nothing ready; want the held %q", held)
	assert.Equal(t, held, string(task.Attempt), "PollActivity after Close: want the held attempt")
}

// waitUntil polls cond on the test's goroutine (not require.Eventually,
// which calls it on another): a cond may fail the test, as
// pollActivityNow does.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}
