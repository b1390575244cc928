package redis_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
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

// roundTrips is a go-redis hook that counts round trips: each command sent
// on its own and each pipeline is one.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestRoundTrips counts the round trips of each call on the paths the
// engine takes, after the scripts are loaded. The fake clock never moves,
// so no timer of the store runs in between.
func TestRoundTrips(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	count := &roundTrips{}
	client.AddHook(count)
	clock := durabletest.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	// One partition: a Poll with a done context costs a round trip per
	// partition it looks at.
	s := redis.New(client, redis.WithClock(clock), redis.WithPartitions(1))
	t.Cleanup(func() { s.Close() })

	var (
		info  backend.RunInfo
		lease backend.Lease
		task  backend.Task
		inbox []backend.InboxEntry
	)
	pollNow := func() error {
		done, cancel := context.WithCancel(ctx)
		cancel()
		var err error
		task, err = s.Poll(done, "w1")
		return err
	}
	// commit is a step as the engine commits it: the record it read,
	// with a new status.
	commit := func(status backend.Status, wake time.Time, release bool, events ...string) func() error {
		return func() error {
			run := info
			run.Status, run.WakeAt = status, wake
			c := backend.Commit{Lease: lease, Expect: info.HistoryLen, Run: run, Release: release}
			for _, e := range events {
				c.Events = append(c.Events, []byte(e))
			}
			for _, e := range inbox {
				c.Consumed = append(c.Consumed, e.ID)
			}
			inbox = nil
			if err := s.Commit(ctx, c); err != nil {
				return err
			}
			info.HistoryLen += int64(len(events))
			return nil
		}
	}
	var attempt backend.ActivityTask
	push := func(queue, data string) func() error {
		return func() error { return s.PushActivity(ctx, queue, []byte(data)) }
	}
	// pollActivity polls, with a done context or not, and checks that it
	// gets want ("" for nothing ready).
	pollActivity := func(doneCtx bool, want string, queues ...string) func() error {
		return func() error {
			pctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if doneCtx {
				cancel()
			}
			var err error
			attempt, err = s.PollActivity(pctx, "w1", queues)
			if want == "" && errors.Is(err, context.Canceled) {
				return nil
			}
			if err == nil && string(attempt.Attempt) != want {
				err = fmt.Errorf("got %q; want %q", attempt.Attempt, want)
			}
			return err
		}
	}
	steps := []struct {
		name string
		call func() error
		want int64
	}{
		{"CreateRun", func() error {
			var err error
			info, _, err = s.CreateRun(ctx, backend.RunInfo{ID: "order-1", Workflow: "checkout"}, []byte("started"))
			return err
		}, 1},
		{"Poll (done context)", pollNow, 1},
		{"Lease", func() error { var err error; lease, err = s.Lease(ctx, "order-1", "w1", time.Minute); return err }, 1},
		{"Ack", func() error { return s.Ack(ctx, task) }, 1},
		{"GetRun", func() error { var err error; info, err = s.GetRun(ctx, "order-1"); return err }, 1},
		{"ReadHistory", func() error { _, err := s.ReadHistory(ctx, "order-1", 1); return err }, 1},
		{"Commit (first step, new status)", commit(backend.StatusRunning, time.Time{}, false, "step 1 scheduled"), 1},
		{"Commit (step)", commit(backend.StatusRunning, time.Time{}, false, "step 1 done", "step 2 scheduled"), 1},
		{"Commit (wait for a timer, release)", commit(backend.StatusWaiting, clock.Now().Add(time.Hour), true), 1},
		{"Send", func() error { return s.Send(ctx, "order-1", []byte("signal")) }, 1},
		{"Lease again", func() error { var err error; lease, err = s.Lease(ctx, "order-1", "w1", time.Minute); return err }, 1},
		{"ReadInbox", func() error { var err error; inbox, err = s.ReadInbox(ctx, "order-1"); return err }, 1},
		{"Commit (signal consumed, timer kept, release)", commit(backend.StatusWaiting, clock.Now().Add(time.Hour), true, "signal received"), 1},
		{"Lease renewal", func() error { var err error; lease, err = s.Lease(ctx, "order-1", "w1", time.Minute); return err }, 1},
		{"Commit (run completed, timer cleared)", commit(backend.StatusCompleted, time.Time{}, true, "completed"), 1},

		{"PushActivity", push("gpu", "render frame 1"), 1},
		{"PollActivity (one queue, done context)", pollActivity(true, "render frame 1", "gpu"), 1},
		{"AckActivity", func() error { return s.AckActivity(ctx, attempt) }, 1},
		{"PushActivity (another queue)", push("cpu", "encode frame 1"), 1},
		{"PollActivity (two queues, attempt ready)", pollActivity(false, "encode frame 1", "gpu", "cpu"), 2},
		{"AckActivity (again)", func() error { return s.AckActivity(ctx, attempt) }, 1},
		{"PushActivity (third)", push("gpu", "render frame 2"), 1},
		{"PollActivity (one queue, attempt ready)", pollActivity(false, "render frame 2", "gpu"), 1},
		{"AckActivity (third)", func() error { return s.AckActivity(ctx, attempt) }, 1},
		{"PollActivity (two queues, done context, none)", pollActivity(true, "", "gpu", "cpu"), 1},
	}
	// The first pass loads the scripts; the second counts.
	for pass := range 2 {
		if pass == 1 {
			require.NoError(t, client.Del(ctx, "cairn:{r:order-1}:run").Err())
			info, inbox = backend.RunInfo{}, nil
			require.NoError(t, drain(ctx, s))
		}
		for _, st := range steps {
			before := count.n.Load()
			require.NoError(t, st.call(), st.name)
			if got := count.n.Load() - before; pass == 1 && assert.Equal(t, st.want, got, "%s: round trips", st.name) {
				t.Logf("%-50s %d round trip(s)", st.name, got)
			}
		}
	}
}

// drain acknowledges every ready task.
func drain(ctx context.Context, s *redis.Store) error {
	done, cancel := context.WithCancel(ctx)
	cancel()
	for {
		task, err := s.Poll(done, "drain")
		if err != nil {
			return nil
		}
		if err := s.Ack(ctx, task); err != nil {
			return err
		}
	}
}
