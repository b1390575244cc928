package durable

import "errors"

// Errors of the engine. The errors workflow code and clients get for
// recorded failures (ActivityError, ChildError, RunError) unwrap to the one
// of the failure's kind, so errors.Is works the same on first execution and
// on replay.
var (
	// ErrCanceled means the run was canceled. Workflow calls made on a
	// cancelable Context return it once the cancellation is delivered;
	// a workflow that returns it (wrapped or not) ends as canceled.
	ErrCanceled = errors.New("canceled")
	// ErrTimeout means an activity attempt ran past its start-to-close
	// timeout. The attempt is retried per the retry policy.
	ErrTimeout = errors.New("activity timed out")
	// ErrHeartbeatTimeout means a running activity did not heartbeat
	// within its heartbeat timeout. The attempt is retried.
	ErrHeartbeatTimeout = errors.New("activity heartbeat timed out")
	// ErrPanic means workflow or activity code panicked; the Failure
	// holds the stack. In an activity it is a failed, retried attempt; in
	// a workflow it fails the run.
	ErrPanic = errors.New("panic")
	// ErrAttemptLost means an activity attempt was cut off because its
	// worker stopped (crashed, was killed, lost its lease). It is retried
	// at once with the same idempotency key and counts against the retry
	// policy's MaximumLostAttempts, not MaximumAttempts: an activity fails
	// with it only when more attempts than that were lost.
	ErrAttemptLost = errors.New("activity attempt lost with its worker")
	// ErrNondeterminism means the workflow code did not issue the
	// commands its history recorded. The run is parked, not failed.
	ErrNondeterminism = errors.New("non-deterministic workflow")
	// ErrUnregistered means no workflow of the run's name is registered in
	// the worker. The run is parked.
	ErrUnregistered = errors.New("workflow not registered")
	// ErrRunExists means a run with the requested id exists with another
	// workflow or input.
	ErrRunExists = errors.New("run exists with another workflow or input")
)
