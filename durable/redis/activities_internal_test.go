package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
)

// exerciseActivities makes every call of the activity queues, and runs
// every activity script, on queues with the given names: a PollActivity
// that waits for its reader, one that finds an attempt ready, one over
// several queues, acknowledgements, a redelivery after the visibility
// timeout, a hand-back, and the janitor's rescue of an attempt whose
// reader died before recording it. s's visibility timeout must be 1s.
func exerciseActivities(t *testing.T, s *Store, clock *durabletest.Clock, names []string) {
	ctx := t.Context()
	done, cancel := context.WithCancel(ctx)
	cancel()
	push := func(name, attempt string) {
		t.Helper()
		require.NoError(t, s.PushActivity(ctx, name, []byte(attempt)), "PushActivity(%q)", name)
	}
	poll := func(ctx context.Context, name, want string, queues ...string) backend.ActivityTask {
		t.Helper()
		task, err := s.PollActivity(ctx, "w1", append([]string{name}, queues...))
		require.NoError(t, err, "PollActivity(%q)", name)
		require.Equal(t, name, task.Queue, "PollActivity(%q): queue", name)
		require.Equal(t, want, string(task.Attempt), "PollActivity(%q): attempt", name)
		return task
	}
	ack := func(task backend.ActivityTask) {
		t.Helper()
		require.NoError(t, s.AckActivity(ctx, task), "AckActivity(%q)", task.Queue)
	}

	for _, name := range names {
		// A PollActivity that waits: the reader reads and records.
		got := make(chan backend.ActivityTask, 1)
		go func() {
			task, err := s.PollActivity(ctx, "w1", []string{name})
			assert.NoError(t, err, "blocked PollActivity(%q)", name)
			got <- task
		}()
		time.Sleep(20 * time.Millisecond)
		push(name, "waited for")
		task := <-got
		require.Equal(t, name, task.Queue, "blocked PollActivity(%q): queue", name)
		require.Equal(t, "waited for", string(task.Attempt), "blocked PollActivity(%q): attempt", name)
		ack(task)

		push(name, "first")
		push(name, "second")
		poll(ctx, name, "first")                       // ready: taken at once
		ack(poll(done, name, "second", "other-queue")) // several queues: looked at, then taken
	}

	clock.Advance(2 * time.Second) // the "first" attempts go back to their queues
	for _, name := range names {
		again := poll(done, name, "first")
		s.giveBackActivity(again)
		ack(poll(done, name, "first"))

		// A reader that dies between reading an attempt and recording it.
		push(name, "orphan")
		err := s.client.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: "dead",
			Streams: []string{s.queueKeys(name).attempts, ">"}, Count: 1, Block: -1}).Err()
		require.NoError(t, err)
		task, err := s.PollActivity(done, "w1", []string{name})
		require.ErrorIs(t, err, context.Canceled, "PollActivity(%q) = %+v; want nothing ready before the janitor runs", name, task)
		n, err := s.run(ctx, s.scripts.actJanitor, s.queueKeys(name).list(), group, "janitor", 0, 10, 1)
		require.NoError(t, err, "janitor on %q", name)
		require.Equal(t, int64(1), n, "janitor on %q: want 1 attempt queued again", name)
		ack(poll(done, name, "orphan"))
		task, err = s.PollActivity(done, "w1", []string{name})
		require.ErrorIs(t, err, context.Canceled, "PollActivity(%q) = %+v; want the queue empty", name, task)
	}
}
