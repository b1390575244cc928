package durable

import (
	"fmt"

	"github.com/cairn-dev/cairn/durable/backend"
)

// StartActivity starts an activity and returns its future. The activity is
// journaled when the workflow next blocks; it runs after that, in the
// worker that owns the run.
func StartActivity[In, Out any](ctx Context, act *Activity[In, Out], in In) Future[Out] {
	rt := ctx.runtime()
	rt.check()
	f := &future[Out]{what: description{kind: "activity", name: act.name}}
	if err := ctx.Err(); err != nil {
		f.set(*new(Out), err)
		return f
	}
	input, err := encodePayload(in)
	if err != nil {
		f.set(*new(Out), fmt.Errorf("activity %s: %w", act.name, err))
		return f
	}
	cmd := &command{activity: act.def, input: input, cancelable: ctx.cancelable(), attempt: 1, running: true}
	cmd.resolve = func(e backend.Event) {
		if e.Type == backend.EventActivityCompleted {
			f.setPayload(e.Payload, nil)
			return
		}
		f.set(*new(Out), &ActivityError{Activity: act.name, Step: e.Step, Attempt: e.Attempt, Failure: e.Failure})
	}
	rt.issue(ctx, cmd, backend.Event{Type: backend.EventActivityScheduled, Name: act.name, Attempt: 1})
	f.what.step = cmd.step
	return f
}

// Execute runs an activity and waits for its result: Start, then Get.
func Execute[In, Out any](ctx Context, act *Activity[In, Out], in In) (Out, error) {
	return StartActivity(ctx, act, in).Get(ctx)
}

// ActivityError is the error workflow code gets from an activity that
// failed for good: its last attempt's failure with where it happened.
// errors.Is(err, ErrTimeout) and the like work through its backend.Failure.
type ActivityError struct {
	Activity string
	Step     int
	Attempt  int
	Failure  *backend.Failure
}

func (e *ActivityError) Error() string {
	return fmt.Sprintf("activity %s (step %d, attempt %d): %s", e.Activity, e.Step, e.Attempt, e.failure().Message)
}

// Unwrap gives the failure and the sentinel error of its kind.
func (e *ActivityError) Unwrap() []error { return unwrapFailure(e.failure()) }

func (e *ActivityError) failure() *backend.Failure {
	if e.Failure == nil {
		return &backend.Failure{Message: "failed"}
	}
	return e.Failure
}
