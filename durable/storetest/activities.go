package storetest

import (
	"context"
	"errors"
	"time"

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
	if err != nil {
		e.t.Fatalf("PollActivity(%v): %v", queues, err)
	}
	return task
}

func (e *env) push(q backend.ActivityQueue, queue, attempt string) {
	e.t.Helper()
	if err := q.PushActivity(e.ctx(), queue, []byte(attempt)); err != nil {
		e.t.Fatalf("PushActivity(%q): %v", queue, err)
	}
}

func (e *env) noActivity(q backend.ActivityQueue, when string, queues ...string) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx())
	cancel()
	if task, err := q.PollActivity(ctx, "w1", queues); !errors.Is(err, context.Canceled) {
		e.t.Fatalf("%s: PollActivity = %+v, %v; want nothing ready", when, task, err)
	}
}

func testActivityOrder(e *env, q backend.ActivityQueue) {
	e.push(q, "gpu", "g1")
	e.push(q, "cpu", "c1")
	e.push(q, "gpu", "g2")
	e.noActivity(q, "on a queue nobody pushed to", "other")
	for _, want := range []string{"g1", "g2"} {
		if got := e.pollActivity(q, e.ctx(), "gpu"); got.Queue != "gpu" || string(got.Attempt) != want {
			e.t.Fatalf("PollActivity(gpu) = %q from %q; want %q", got.Attempt, got.Queue, want)
		}
	}
	if got := e.pollActivity(q, e.ctx(), "gpu", "cpu"); string(got.Attempt) != "c1" {
		e.t.Fatalf("PollActivity(gpu, cpu) = %q; want c1", got.Attempt)
	}
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
	if task := <-ch; string(task.Attempt) != "g1" {
		e.t.Fatalf("blocked PollActivity = %q; want g1", task.Attempt)
	}
}

func testActivityDoneContext(e *env, q backend.ActivityQueue) {
	e.push(q, "gpu", "g1")
	ctx, cancel := context.WithCancel(e.ctx())
	cancel()
	if got := e.pollActivity(q, ctx, "gpu"); string(got.Attempt) != "g1" {
		e.t.Fatalf("PollActivity with a done context = %q; want the ready g1", got.Attempt)
	}
	e.noActivity(q, "after the only attempt was taken", "gpu")
}

func testActivityRedelivers(e *env, q backend.ActivityQueue) {
	e.push(q, "gpu", "g1")
	e.push(q, "gpu", "g2")
	first := e.pollActivity(q, e.ctx(), "gpu")
	second := e.pollActivity(q, e.ctx(), "gpu")
	if err := q.AckActivity(e.ctx(), second); err != nil {
		e.t.Fatal(err)
	}
	e.noActivity(q, "right after delivery", "gpu")
	e.clock.Advance(VisibilityTimeout + time.Second)
	again := e.pollActivity(q, e.ctx(), "gpu")
	if string(again.Attempt) != string(first.Attempt) {
		e.t.Fatalf("redelivered %q; want the unacknowledged %q", again.Attempt, first.Attempt)
	}
	if err := q.AckActivity(e.ctx(), again); err != nil {
		e.t.Fatal(err)
	}
	e.clock.Advance(VisibilityTimeout + time.Second)
	e.noActivity(q, "after every attempt was acknowledged", "gpu")
}
