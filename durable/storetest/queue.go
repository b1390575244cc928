package storetest

import (
	"context"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
)

// The task queue: Poll, Ack and redelivery.

func testPollQueued(e *env) {
	e.create("r1")
	e.create("r2")
	seen := make(map[string]bool)
	for range 2 {
		task, ok := e.pollNow()
		require.True(e.t, ok, "Poll gave %d tasks after two CreateRun calls; want 2", len(seen))
		assert.NotEmpty(e.t, task.ID, "task for %q has no id", task.RunID)
		seen[task.RunID] = true
	}
	assert.Equal(e.t, map[string]bool{"r1": true, "r2": true}, seen, "Poll gave tasks for")
}

// pollAsync polls in a goroutine and delivers the result on the channel.
func (e *env) pollAsync() <-chan taskOrError {
	ctx := e.ctx()
	ch := make(chan taskOrError, 1)
	go func() {
		task, err := e.s.Poll(ctx, "worker-async")
		ch <- taskOrError{task, err}
	}()
	return ch
}

type taskOrError struct {
	task backend.Task
	err  error
}

// stillBlocked fails if the poll in ch returned within quiet.
func (e *env) stillBlocked(ch <-chan taskOrError, when string) {
	e.t.Helper()
	select {
	case r := <-ch:
		e.t.Fatalf("%s: Poll returned %+v, %v; want it to block", when, r.task, r.err)
	case <-time.After(quiet):
	}
}

// wantPolled fails unless the poll in ch returns a task for runID.
func (e *env) wantPolled(ch <-chan taskOrError, runID string) {
	e.t.Helper()
	r := <-ch
	require.NoError(e.t, r.err, "blocked Poll: want a task for %q", runID)
	require.Equal(e.t, runID, r.task.RunID, "blocked Poll: the task's run")
}

func testPollBlocks(e *env) {
	e.create("r1")
	e.drain()
	ch := e.pollAsync()
	e.stillBlocked(ch, "with an empty queue")
	e.send("r1", "m1")
	e.wantPolled(ch, "r1")
}

// testPollWakes checks that a blocked Poll returns when the clock reaches a
// wake time, without another call to the store.
func testPollWakes(e *env) {
	e.create("r1")
	e.drain()
	c := step(e.lease("r1", "w1", time.Hour), 1)
	c.Run.WakeAt = e.clock.Now().Add(10 * time.Second)
	c.Release = true
	e.commit(c)
	ch := e.pollAsync()
	e.stillBlocked(ch, "before the wake time")
	e.clock.Advance(10 * time.Second)
	e.wantPolled(ch, "r1")
}

func testPollDoneReady(e *env) {
	e.create("r1")
	ctx, cancel := context.WithCancel(e.ctx())
	cancel()
	task, err := e.s.Poll(ctx, "w1")
	require.NoError(e.t, err, "Poll with done context and a ready task")
	assert.Equal(e.t, "r1", task.RunID, "Poll with done context and a ready task")
}

func testPollDoneEmpty(e *env) {
	ctx, cancel := context.WithCancel(e.ctx())
	cancel()
	_, err := e.s.Poll(ctx, "w1")
	assert.ErrorIs(e.t, err, context.Canceled, "Poll with canceled context and no task")
	ctx, cancel = context.WithTimeout(e.ctx(), quiet)
	defer cancel()
	_, err = e.s.Poll(ctx, "w1")
	assert.ErrorIs(e.t, err, context.DeadlineExceeded, "Poll with a deadline and no task")
}

func testAck(e *env) {
	e.create("r1")
	task := e.expectTask("r1")
	e.ack(task)
	e.ack(task) // twice is not an error
	e.clock.Advance(VisibilityTimeout + time.Second)
	e.noTask("after an acknowledged task's visibility timeout")
}

func testRedelivery(e *env) {
	e.create("r1")
	first := e.expectTask("r1")
	e.noTask("right after delivery")
	e.clock.Advance(VisibilityTimeout + time.Second)
	again := e.expectTask("r1")
	e.ack(first) // delivered again since: not an error
	e.ack(again)
	e.clock.Advance(VisibilityTimeout + time.Second)
	e.noTask("after the redelivered task was acknowledged")
}
