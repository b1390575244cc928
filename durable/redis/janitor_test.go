package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestJanitorRequeuesUnrecordedTask checks that a task whose reader died
// between reading it and recording its delivery is queued again by the
// janitor, although the run's queued mark, which that reader never
// cleared, still stands. (A worker killed at that moment left its run
// stranded: the mark made every later enqueue add nothing.)
func TestJanitorRequeuesUnrecordedTask(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	clock := durabletest.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := Open(srv.URL(), WithClock(clock), WithPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p := s.parts[0]
	if _, err := s.take(ctx, p, "w", 1, nil); err != nil { // a reader's first look creates the group
		t.Fatal(err)
	}
	if _, _, err := s.CreateRun(ctx, backend.RunInfo{ID: "r1", Workflow: "wf"}, []byte("first")); err != nil {
		t.Fatal(err)
	}
	err = s.client.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: "dead",
		Streams: []string{p.keys.tasks, ">"}, Count: 1, Block: -1}).Err()
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if task, err := s.Poll(done, "w"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll = %+v, %v; want nothing ready before the janitor runs", task, err)
	}
	n, err := s.run(ctx, s.scripts.janitor, p.keys.list(), group, "janitor", 0, 10, forgetConsumersAfter.Milliseconds())
	if err != nil || n != int64(1) {
		t.Fatalf("janitor = %v, %v; want 1 run queued again", n, err)
	}
	if task, err := s.Poll(done, "w"); err != nil || task.RunID != "r1" {
		t.Fatalf("Poll after the janitor = %+v, %v; want a task for r1", task, err)
	}
}
