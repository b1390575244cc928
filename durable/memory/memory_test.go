package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/durable/memory"
	"github.com/cairn-dev/cairn/durable/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock backend.Clock) backend.Store {
		return memory.New(memory.WithClock(clock))
	})
}

// pollNow returns a ready task, if any, without blocking.
func pollNow(t *testing.T, s *memory.Store) (backend.Task, bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	task, err := s.Poll(ctx, "w")
	return task, err == nil
}

func TestPollDeduplicates(t *testing.T) {
	ctx := t.Context()
	s := memory.New()
	if _, _, err := s.CreateRun(ctx, backend.RunInfo{ID: "r1"}, []byte("first")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Send(ctx, "r1", []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	if task, ok := pollNow(t, s); !ok || task.RunID != "r1" {
		t.Fatalf("Poll = %+v, %v; want a task for r1", task, ok)
	}
	if task, ok := pollNow(t, s); ok {
		t.Fatalf("second Poll = %+v; want no task: the run was queued once", task)
	}
}

func TestWithVisibilityTimeout(t *testing.T) {
	ctx := t.Context()
	clock := durabletest.NewClock(time.Unix(0, 0))
	s := memory.New(memory.WithClock(clock), memory.WithVisibilityTimeout(5*time.Second))
	if _, _, err := s.CreateRun(ctx, backend.RunInfo{ID: "r1"}, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if _, ok := pollNow(t, s); !ok {
		t.Fatal("no task after CreateRun")
	}
	clock.Advance(4 * time.Second)
	if task, ok := pollNow(t, s); ok {
		t.Fatalf("task %+v delivered again before the visibility timeout", task)
	}
	clock.Advance(time.Second)
	if _, ok := pollNow(t, s); !ok {
		t.Fatal("task not delivered again at the visibility timeout")
	}
}

// TestWakeAtSystemClock checks that a blocked Poll returns at a wake time
// on real time, through the timer the store schedules.
func TestWakeAtSystemClock(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s := memory.New()
	if _, _, err := s.CreateRun(ctx, backend.RunInfo{ID: "r1"}, []byte("first")); err != nil {
		t.Fatal(err)
	}
	task, err := s.Poll(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, task); err != nil {
		t.Fatal(err)
	}
	lease, err := s.Lease(ctx, "r1", "w", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	wake := time.Now().Add(20 * time.Millisecond)
	err = s.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Run: backend.RunInfo{WakeAt: wake}, Release: true})
	if err != nil {
		t.Fatal(err)
	}
	if task, err = s.Poll(ctx, "w"); err != nil || task.RunID != "r1" {
		t.Fatalf("Poll = %+v, %v; want a task for r1 at its wake time", task, err)
	}
	if now := time.Now(); now.Before(wake) {
		t.Errorf("woken %v before the wake time", wake.Sub(now))
	}
}
