package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
	"go.opentelemetry.io/otel/trace"
)

// queuedAttempt is an activity attempt sent to a task queue: the attempt as
// an event (run id, activity, step, attempt, and the input as its payload,
// through the codec) and what the serving worker needs besides.
// attemptVersion is the version of the queuedAttempt encoding.
const attemptVersion = 1

type queuedAttempt struct {
	V        int             `json:"v"`
	Workflow string          `json:"workflow"`
	Key      string          `json:"key"`
	Event    json.RawMessage `json:"event"`
	// Trace is the run's trace under the attempt's span: the parent of
	// the spans the activity makes.
	Trace backend.Trace `json:"trace,omitzero"`
}

// remoteGrace is how much longer than its start-to-close timeout the owner
// of a run waits for the result of a queued attempt before it counts the
// attempt as timed out.
const remoteGrace = time.Second

func (cmd *command) queued() bool { return cmd.activity.opts.TaskQueue != "" }

// remoteDeadline is when the owner stops waiting for a queued attempt.
func (cmd *command) remoteDeadline() time.Time {
	return cmd.startedAt.Add(cmd.activity.opts.startToClose() + remoteGrace)
}

// pushAttempt sends an attempt of a queued activity to its task queue.
func (ex *executor) pushAttempt(ctx context.Context, cmd *command) error {
	q, ok := ex.w.store.(backend.ActivityQueue)
	if !ok {
		return NonRetryable(fmt.Errorf("activity %s: task queue %q: the store has no activity queues", cmd.name, cmd.activity.opts.TaskQueue))
	}
	e, err := backend.EncodeEvent(backend.Event{Type: backend.EventActivityScheduled, RunID: ex.info.ID, Name: cmd.name, Step: cmd.step,
		Attempt: cmd.attempt, Payload: cmd.input}, ex.w.codec)
	if err != nil {
		return err
	}
	data, err := json.Marshal(queuedAttempt{V: attemptVersion, Workflow: ex.info.Workflow,
		Key: stepKey(ex.info.ID, ex.rt.generation, cmd.step), Event: e, Trace: ex.attemptTrace(cmd)})
	if err != nil {
		return err
	}
	return q.PushActivity(ctx, cmd.activity.opts.TaskQueue, data)
}

// remoteResult turns the result of a queued attempt, found in the inbox,
// into an attempt result, if the attempt is still awaited.
func (ex *executor) remoteResult(e backend.Event) (attemptResult, bool) {
	cmd := ex.rt.pending[e.Step]
	if cmd == nil || cmd.kind != backend.EventActivityScheduled || !cmd.queued() || !cmd.running || cmd.attempt != e.Attempt {
		return attemptResult{}, false
	}
	r := attemptResult{step: e.Step, attempt: e.Attempt, payload: e.Payload, failure: e.Failure}
	if e.Type == backend.EventActivityCompleted {
		r.failure = nil
	} else if r.failure == nil {
		r.failure = &backend.Failure{Message: "failed"}
	}
	if !e.FireAt.IsZero() {
		r.retryAfter = e.FireAt.Sub(ex.now())
	}
	return r, true
}

// serveQueues runs attempts from the worker's task queues until ctx is
// done.
func (w *Worker) serveQueues(ctx context.Context) {
	q, ok := w.store.(backend.ActivityQueue)
	if !ok {
		w.log.Error("the store has no activity queues; not serving", "queues", w.queues)
		return
	}
	for {
		select {
		case w.activitySlots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		task, err := q.PollActivity(ctx, w.id, w.queues)
		if err != nil {
			<-w.activitySlots
			if ctx.Err() != nil {
				return
			}
			w.log.Error("poll activity", "err", err)
			w.sleep(ctx, time.Second)
			continue
		}
		w.serveAttempt(ctx, q, task)
	}
}

// serveAttempt runs a queued attempt in a goroutine, sends its result to
// the run's inbox and acknowledges it. It owns one activity slot.
func (w *Worker) serveAttempt(ctx context.Context, q backend.ActivityQueue, task backend.ActivityTask) {
	w.mu.Lock()
	w.serving++
	w.mu.Unlock()
	w.wg.Go(func() {
		defer func() {
			w.mu.Lock()
			w.serving--
			w.mu.Unlock()
			<-w.activitySlots
			notify(w.idle)
		}()
		if err := w.runQueued(ctx, task); err != nil {
			w.log.Warn("queued activity", "queue", task.Queue, "err", err)
			return // not acknowledged: delivered again later
		}
		if err := q.AckActivity(ctx, task); err != nil {
			w.log.Warn("ack queued activity", "queue", task.Queue, "err", err)
		}
	})
}

// runQueued runs one queued attempt and reports its result to the run.
func (w *Worker) runQueued(ctx context.Context, task backend.ActivityTask) error {
	var qa queuedAttempt
	if err := json.Unmarshal(task.Attempt, &qa); err != nil {
		w.log.Error("dropping undecodable queued attempt", "queue", task.Queue, "err", err)
		return nil
	}
	e, err := backend.DecodeEvent(qa.Event, w.codec)
	if err != nil || qa.V > attemptVersion {
		w.log.Error("dropping undecodable queued attempt", "queue", task.Queue, "err", errors.Join(err, backend.ErrUnknownEvent))
		return nil
	}
	result := backend.Event{Type: backend.EventActivityCompleted, Step: e.Step, Attempt: e.Attempt}
	def, ok := w.activities[e.Name]
	if !ok {
		result.Type = backend.EventActivityAttemptFailed
		result.Failure = &backend.Failure{Message: fmt.Sprintf("activity %s is not registered in worker %s, which serves queue %s",
			e.Name, w.id, task.Queue), Kind: backend.KindUnregistered}
	} else {
		info := ActivityInfo{RunID: e.RunID, Workflow: qa.Workflow, Activity: e.Name, Step: e.Step, Attempt: e.Attempt, IdempotencyKey: qa.Key}
		actCtx := ctx
		if sc := qa.Trace.ParentContext(); sc.IsValid() {
			actCtx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
		r := runAttempt(actCtx, w.clock, w.wrap(def.run), info, def.opts, e.Payload)
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: let another worker run it
		}
		result.Payload = r.payload
		if r.failure != nil {
			result.Type, result.Failure = backend.EventActivityAttemptFailed, r.failure
			if r.retryAfter > 0 {
				result.FireAt = w.clock.Now().Add(r.retryAfter)
			}
		}
	}
	if err := w.client.send(ctx, e.RunID, result); err != nil && !errors.Is(err, ErrRunEnded) && !errors.Is(err, backend.ErrRunNotFound) {
		return fmt.Errorf("report %s to run %s: %w", e.Name, e.RunID, err)
	}
	return nil
}
