package durable

import (
	"fmt"

	"github.com/cairn-dev/cairn/durable/backend"
)

// StartChild starts a child run of wf and returns its future. The child's
// run id derives from the parent's and the step ("parent/0/4"), so it is the
// same on replay; the child is an ordinary run that can be described,
// signaled and canceled. Canceling the parent cancels the child.
func StartChild[In, Out any](ctx Context, wf *Workflow[In, Out], in In) Future[Out] {
	rt := ctx.runtime()
	rt.check()
	f := &future[Out]{what: description{kind: "child workflow", name: wf.name}}
	if err := ctx.Err(); err != nil {
		f.set(*new(Out), err)
		return f
	}
	input, err := encodePayload(in)
	if err != nil {
		f.set(*new(Out), fmt.Errorf("child workflow %s: %w", wf.name, err))
		return f
	}
	childID := stepKey(rt.runID, rt.generation, rt.lastStep+1)
	cmd := &command{input: input, cancelable: ctx.cancelable(), childID: childID}
	cmd.resolve = func(e backend.Event) {
		if e.Failure != nil {
			f.set(*new(Out), &ChildError{Workflow: wf.name, RunID: childID, Step: e.Step, Failure: e.Failure})
			return
		}
		f.setPayload(e.Payload, nil)
	}
	rt.issue(ctx, cmd, backend.Event{Type: backend.EventChildStarted, Name: wf.name, RunID: childID})
	f.what.name, f.what.step = wf.name+" "+childID, cmd.step
	return f
}

// ExecuteChild runs a child run and waits for its result: StartChild, then
// Get.
func ExecuteChild[In, Out any](ctx Context, wf *Workflow[In, Out], in In) (Out, error) {
	return StartChild(ctx, wf, in).Get(ctx)
}

// ChildError is the error workflow code gets from a child run that failed
// or was canceled.
type ChildError struct {
	Workflow string
	RunID    string
	Step     int
	Failure  *backend.Failure
}

func (e *ChildError) Error() string {
	return fmt.Sprintf("child workflow %s (run %s): %s", e.Workflow, e.RunID, e.Failure.Message)
}

// Unwrap gives the failure and the sentinel error of its kind.
func (e *ChildError) Unwrap() []error { return unwrapFailure(e.Failure) }

// stepKey names a step of a run across its generations: "run/gen/step".
func stepKey(runID string, generation, step int) string {
	return fmt.Sprintf("%s/%d/%d", runID, generation, step)
}
