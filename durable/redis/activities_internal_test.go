package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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
		if err := s.PushActivity(ctx, name, []byte(attempt)); err != nil {
			t.Fatalf("PushActivity(%q): %v", name, err)
		}
	}
	poll := func(ctx context.Context, name, want string, queues ...string) backend.ActivityTask {
		t.Helper()
		task, err := s.PollActivity(ctx, "w1", append([]string{name}, queues...))
		if err != nil || task.Queue != name || string(task.Attempt) != want {
			t.Fatalf("PollActivity(%q) = %q from %q, %v; want %q", name, task.Attempt, task.Queue, err, want)
		}
		return task
	}
	ack := func(task backend.ActivityTask) {
		t.Helper()
		if err := s.AckActivity(ctx, task); err != nil {
			t.Fatalf("AckActivity(%q): %v", task.Queue, err)
		}
	}

	for _, name := range names {
		// A PollActivity that waits: the reader reads and records.
		got := make(chan backend.ActivityTask, 1)
		go func() {
			task, err := s.PollActivity(ctx, "w1", []string{name})
			if err != nil {
				t.Errorf("blocked PollActivity(%q): %v", name, err)
			}
			got <- task
		}()
		time.Sleep(20 * time.Millisecond)
		push(name, "waited for")
		if task := <-got; task.Queue != name || string(task.Attempt) != "waited for" {
			t.Fatalf("blocked PollActivity(%q) = %q from %q", name, task.Attempt, task.Queue)
		} else {
			ack(task)
		}

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
		if err != nil {
			t.Fatal(err)
		}
		if task, err := s.PollActivity(done, "w1", []string{name}); !errors.Is(err, context.Canceled) {
			t.Fatalf("PollActivity(%q) = %+v, %v; want nothing ready before the janitor runs", name, task, err)
		}
		n, err := s.run(ctx, s.scripts.actJanitor, s.queueKeys(name).list(), group, "janitor", 0, 10, 1)
		if err != nil || n != int64(1) {
			t.Fatalf("janitor on %q = %v, %v; want 1 attempt queued again", name, n, err)
		}
		ack(poll(done, name, "orphan"))
		if task, err := s.PollActivity(done, "w1", []string{name}); !errors.Is(err, context.Canceled) {
			t.Fatalf("PollActivity(%q) = %+v, %v; want the queue empty", name, task, err)
		}
	}
}
