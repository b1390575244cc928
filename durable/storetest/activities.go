package storetest

import (
	"context"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
)

// activityTests are run on stores that implement backend.ActivityQueue.
var activityTests = []struct {
	name string
	fn   func(*env, backend.ActivityQueue)
}{
	{"ActivityQueue/Order", testActivityOrder},
	{"ActivityQueue/Blocks", testActivityBlocks},
	{"ActivityQueue/DoneContext", testActivityDoneContext},
	{"ActivityQueue/Redelivers", testActivityRedelivers},
}

func (e *env) pollActivity(q backend.ActivityQueue, ctx context.Context, queues ...string) backend.ActivityTask {
	e.t.Helper()
	task, err := q.PollActivity(ctx, "w1", queues)
	require.NoError(e.t, err, "PollActivity(%v)", queues)
	return task
}

func (e *env) push(q backend.ActivityQueue, queue, attempt string) {
	e.t.Helper()
	require.NoError(e.t, q.PushActivity(e.ctx(), queue, []byte(attempt)), "PushActivity(%q)", queue)
}

func (e *env) noActivity(q backend.ActivityQueue, when string, queues ...string) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx())
	cancel()
	task, err := q.PollActivity(ctx, "w1", queues)
	require.ErrorIs(e.t, err, context.Canceled, "%s: PollActivity = %+v; want nothing ready", when, task)
}

func testActivityOrder(e *env, q backend.ActivityQueue) {
	e.push(q, "gpu", "g1")
	e.push(q, "cpu", "c1")
	e.push(q, "gpu", "g2")
	e.noActivity(q, "on a queue nobody pushed to", "other")
	for _, want := range []string{"g1", "g2"} {
		got := e.pollActivity(q, e.ctx(), "gpu")
		require.Equal(e.t, "gpu", got.Queue, "PollActivity(gpu): the queue")
		require.Equal(e.t, want, string(got.Attempt), "PollActivity(gpu)")
	}
	assert.Equal(e.t, "c1", string(e.pollActivity(q, e.ctx(), "gpu", "cpu").Attempt), "PollActivity(gpu, cpu)")
}

func testActivityBlocks(e *env, q backend.ActivityQueue) {
	ch := make(chan backend.ActivityTask, 1)
	ctx := e.ctx()
	go func() {
		task, _ := q.PollActivity(ctx, "w1", []string{"gpu"})
		ch <- task
	}()
	select {
	case task := <-ch:
		e.t.Fatalf("PollActivity returned %+v from an empty queue", task)
	case <-time.After(quiet):
	}
	e.push(q, "gpu", "g1")
	task := <-ch
	assert.Equal(e.t, "g1", string(task.Attempt), "blocked PollActivity")
}

func testActivityDoneContext(e *env, q backend.ActivityQueue) {
	e.push(q, "gpu", "g1")
	ctx, cancel := context.WithCancel(e.ctx())
	cancel()
	got := e.pollActivity(q, ctx, "gpu")
	require.Equal(e.t, "g1", string(got.Attempt), "PollActivity with a done context: want the ready g1")
	e.noActivity(q, "after the only attempt was taken", "gpu")
}

func testActivityRedelivers(e *env, q backend.ActivityQueue) {
	e.push(q, "gpu", "g1")
	e.push(q, "gpu", "g2")
	first := e.pollActivity(q, e.ctx(), "gpu")
	second := e.pollActivity(q, e.ctx(), "gpu")
	require.NoError(e.t, q.AckActivity(e.ctx(), second))
	e.noActivity(q, "right after delivery", "gpu")
	e.clock.Advance(VisibilityTimeout + time.Second)
	again := e.pollActivity(q, e.ctx(), "gpu")
	require.Equal(e.t, string(first.Attempt), string(again.Attempt), "redelivered: want the unacknowledged attempt")
	require.NoError(e.t, q.AckActivity(e.ctx(), again))
	e.clock.Advance(VisibilityTimeout + time.Second)
	e.noActivity(q, "after every attempt was acknowledged", "gpu")
}
