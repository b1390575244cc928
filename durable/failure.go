package durable

import (
	"errors"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// NonRetryable marks err so that the activity attempt that returned it is
// not retried: the activity fails at once. It returns nil for a nil err.
func NonRetryable(err error) error {
	if err == nil {
		return nil
	}
	return &nonRetryableError{err}
}

type nonRetryableError struct{ err error }

func (e *nonRetryableError) Error() string { return e.err.Error() }
func (e *nonRetryableError) Unwrap() error { return e.err }

// RetryAfter marks err so that the next attempt waits at least d, for
// example the Retry-After of a rate-limited API. The retry policy still
// decides whether there is a next attempt.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err, d}
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// retryAfter returns the wait asked for with RetryAfter, if any.
func retryAfter(err error) time.Duration {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after
	}
	return 0
}

// failureOf turns an error into the Failure to record. A *Failure in err's
// chain keeps its kind; the recorded type is that of the innermost error.
func failureOf(err error) *backend.Failure {
	f := &backend.Failure{Message: err.Error(), Type: rootType(err)}
	var nr *nonRetryableError
	f.NonRetryable = errors.As(err, &nr)
	var inner *backend.Failure
	switch {
	case errors.As(err, &inner):
		f.Kind, f.Stack, f.Details = inner.Kind, inner.Stack, inner.Details
		f.NonRetryable = f.NonRetryable || inner.NonRetryable
		if inner.Type != "" {
			f.Type = inner.Type
		}
	case errors.Is(err, ErrCanceled):
		f.Kind = backend.KindCanceled
	case errors.Is(err, ErrTimeout):
		f.Kind = backend.KindTimeout
	case errors.Is(err, ErrHeartbeatTimeout):
		f.Kind = backend.KindHeartbeat
	}
	return f
}

// rootType is the Go type of the innermost error of err's Unwrap chain.
func rootType(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return fmt.Sprintf("%T", err)
		}
		err = next
	}
}

// NondeterminismError says where replayed workflow code left its history:
// the position and step, and what history recorded against what the code
// did. It unwraps to ErrNondeterminism.
type NondeterminismError struct {
	RunID    string
	Seq      int64 // position of the recorded event, 0 if none
	Step     int
	Expected string // what history recorded
	Actual   string // what the code did
}

func (e *NondeterminismError) Error() string {
	return fmt.Sprintf("non-deterministic workflow: run %s step %d (history position %d): history has %s, code %s",
		e.RunID, e.Step, e.Seq, e.Expected, e.Actual)
}

// Diff renders the mismatch as an expected-versus-actual diff.
func (e *NondeterminismError) Diff() string {
	return fmt.Sprintf("run %s, step %d, history position %d\n- expected (history): %s\n+ actual   (code):    %s\n",
		e.RunID, e.Step, e.Seq, e.Expected, e.Actual)
}

func (e *NondeterminismError) Unwrap() error { return ErrNondeterminism }

// kindError is the sentinel error of a failure's kind, nil for KindError.
func kindError(f *backend.Failure) error {
	switch f.Kind {
	case backend.KindCanceled:
		return ErrCanceled
	case backend.KindTimeout:
		return ErrTimeout
	case backend.KindHeartbeat:
		return ErrHeartbeatTimeout
	case backend.KindPanic:
		return ErrPanic
	case backend.KindLost:
		return ErrAttemptLost
	case backend.KindNondeterminism:
		return ErrNondeterminism
	case backend.KindCorrupt:
		return backend.ErrCorruptHistory
	case backend.KindUnknownEvent:
		return backend.ErrUnknownEvent
	case backend.KindUnregistered:
		return ErrUnregistered
	}
	return nil
}

// unwrapFailure is what an error that carries f unwraps to: f itself, and
// the sentinel of its kind.
func unwrapFailure(f *backend.Failure) []error {
	if f == nil {
		return nil
	}
	if k := kindError(f); k != nil {
		return []error{f, k}
	}
	return []error{f}
}
