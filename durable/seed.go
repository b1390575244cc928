package durable

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// seedLeaseTTL bounds the lease Seed holds while it writes; it releases
// it at once.
const seedLeaseTTL = 30 * time.Second

// Seed creates the run runID with history as its history: events
// recorded by another run (typically a prefix of it, see package evals),
// so that a worker that has the workflow replays them, without executing
// again any activity, timer or child run they settle, and executes the
// workflow on from their end with the code deployed now.
//
// history must begin with the run_started event, hold its events at
// positions 1, 2, 3, ... and not end the run (no run_completed,
// run_failed, run_canceled or run_continued event). Its events are kept
// as they are (times, random seed, results), except that the run is given
// the trace of ctx, as Start gives it, and no parent. A step the history
// schedules and does not settle is executed again by the worker, as the
// attempt of a lost worker would be.
//
// The replay is checked as every replay is: if the code deployed does not
// issue the commands the history recorded (another activity at a step, a
// step missing), the run parks with a *NondeterminismError as its
// failure, instead of going on.
//
// Seed creates the run as one that failed (saying it is being seeded),
// so that no worker executes it from its first event, not even one that
// starts meanwhile and retries parked runs; then it writes the rest of
// the history under the run's lease, makes the run pending, and due at
// once. Until Seed returns, a caller waiting for the run's result would
// see that failure: wait for it after Seed. Seeding a run id that exists
// is an error wrapping ErrRunExists.
func (c *Client) Seed(ctx context.Context, runID string, history []backend.Event) error {
	if err := seedable(history); err != nil {
		return fmt.Errorf("seed run %s: %w", runID, err)
	}
	now := c.clock.Now()
	first := history[0]
	first.RunID, first.Trace = "", backend.TraceFrom(ctx)
	info := backend.RunInfo{ID: runID, Workflow: first.Name, InputHash: hashInput(first.Payload), Trace: first.Trace,
		Status: backend.StatusFailed, CreatedAt: now, UpdatedAt: now,
		Failure: &backend.Failure{Message: "being seeded with a recorded history", NonRetryable: true}}
	data, err := backend.EncodeEvent(first, c.codec)
	if err != nil {
		return fmt.Errorf("seed run %s: %w", runID, err)
	}
	if _, created, err := c.store.CreateRun(ctx, info, data); err != nil {
		return fmt.Errorf("seed run %s: %w", runID, err)
	} else if !created {
		return fmt.Errorf("seed run %s: %w", runID, ErrRunExists)
	}
	rest := make([][]byte, 0, len(history)-1)
	step := 0
	for _, e := range history[1:] {
		if data, err = backend.EncodeEvent(e, c.codec); err != nil {
			return fmt.Errorf("seed run %s: %w", runID, err)
		}
		rest = append(rest, data)
		step = max(step, e.Step)
	}
	lease, err := c.seedLease(ctx, runID)
	if err != nil {
		return fmt.Errorf("seed run %s: %w", runID, err)
	}
	if info, err = c.store.GetRun(ctx, runID); err != nil {
		return fmt.Errorf("seed run %s: %w", runID, err)
	}
	if info.HistoryLen != 1 || info.Status != backend.StatusFailed {
		return fmt.Errorf("seed run %s: a worker executed the run while it was seeded (%s, %d events)",
			runID, info.Status, info.HistoryLen)
	}
	info.Status, info.Failure, info.Step, info.WakeAt = backend.StatusPending, nil, step, c.clock.Now()
	err = c.store.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Events: rest, Run: info, Release: true})
	if err != nil {
		return fmt.Errorf("seed run %s: %w", runID, err)
	}
	return nil
}

// seedable checks that history can seed a run.
func seedable(history []backend.Event) error {
	if len(history) == 0 || history[0].Type != backend.EventRunStarted {
		return fmt.Errorf("%w: history does not begin with %s", backend.ErrCorruptHistory, backend.EventRunStarted)
	}
	if history[0].Name == "" {
		return fmt.Errorf("%w: %s names no workflow", backend.ErrCorruptHistory, backend.EventRunStarted)
	}
	for i, e := range history {
		if e.Seq != int64(i+1) {
			return fmt.Errorf("%w: event %d says position %d", backend.ErrCorruptHistory, i+1, e.Seq)
		}
		switch e.Type {
		case backend.EventRunCompleted, backend.EventRunFailed, backend.EventRunCanceled, backend.EventRunContinued:
			return fmt.Errorf("history ends the run (%s at position %d): nothing would be left to execute", e.Type, e.Seq)
		case backend.EventRunStarted:
			if i > 0 {
				return fmt.Errorf("%w: %s at position %d", backend.ErrCorruptHistory, e.Type, e.Seq)
			}
		}
	}
	return nil
}

// seedLease takes the lease of a run Seed created. A worker that polled
// the run holds it for as long as it takes to see that the run has ended
// and let it go, so a held lease is asked for again.
func (c *Client) seedLease(ctx context.Context, runID string) (backend.Lease, error) {
	worker := "seed-" + randomID()
	wait := time.Millisecond
	for {
		lease, err := c.store.Lease(ctx, runID, worker, seedLeaseTTL)
		if !errors.Is(err, backend.ErrLeaseHeld) {
			return lease, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return backend.Lease{}, fmt.Errorf("take lease: %w", errors.Join(err, ctx.Err()))
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}
