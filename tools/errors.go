package tools

import (
	"errors"
	"fmt"
)

// Errors that Call returns for failed attempts. They are not shown to the
// model: the caller retries the attempt per the tool's RetryPolicy.
var (
	// ErrTimeout means the call ran past the tool's Timeout. The attempt
	// is retried.
	ErrTimeout = errors.New("tool timed out")
	// ErrPanic means the tool function panicked. It is a failed attempt,
	// retried like any other; a *PanicError carries the value and stack.
	ErrPanic = errors.New("tool panicked")
)

// FatalError is an error the tool marked as fatal with Fatal. Call
// returns it (wrapped with the tool's name) instead of a Result; the caller
// must stop the run rather than retry or tell the model.
type FatalError struct {
	Err error
}

func (e *FatalError) Error() string { return "fatal: " + e.Err.Error() }

// Unwrap returns the marked error.
func (e *FatalError) Unwrap() error { return e.Err }

// Fatal marks err as fatal: a tool returns Fatal(err) when going on would
// be wrong (a broken invariant, a revoked credential), so the run stops
// instead of the model reading the error. Fatal(nil) is nil.
func Fatal(err error) error {
	if err == nil {
		return nil
	}
	return &FatalError{Err: err}
}

// IsFatal reports whether err, or an error it wraps, was marked Fatal.
func IsFatal(err error) bool {
	var fe *FatalError
	return errors.As(err, &fe)
}

// retryableError marks a transient failure, see Retryable.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// Retryable marks err as a transient failure (a 503 from the system the
// tool calls, a dropped connection): Call returns it as a failed attempt,
// to be retried per the tool's RetryPolicy, instead of showing it to the
// model. Retryable(nil) is nil.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &retryableError{err: err}
}

// PanicError is the error Call returns when the tool function panics.
// errors.Is(err, ErrPanic) is true for it.
type PanicError struct {
	Tool  string
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack string
}

func (e *PanicError) Error() string { return fmt.Sprintf("tool %s panicked: %v", e.Tool, e.Value) }

// Is makes errors.Is(err, ErrPanic) true.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Issue is one thing wrong with a call's arguments.
type Issue struct {
	// Path is a JSON Pointer to the offending value in the arguments
	// ("/items/0/qty"); empty for the arguments as a whole.
	Path string `json:"path"`
	// Message says what is wrong, in words a model can act on.
	Message string `json:"message"`
}

func (i Issue) String() string {
	p := i.Path
	if p == "" {
		p = "(root)"
	}
	return "at " + p + ": " + i.Message
}

// ArgumentError means a call's arguments were rejected before the tool
// ran: malformed JSON, invalid UTF-8, or a schema violation. Its message
// is written for the model.
type ArgumentError struct {
	Tool   string
	Issues []Issue
}

func (e *ArgumentError) Error() string {
	var b []byte
	b = fmt.Appendf(b, "invalid arguments for tool %q:", e.Tool)
	for _, is := range e.Issues {
		b = append(b, "\n- "...)
		b = append(b, is.String()...)
	}
	b = append(b, "\nFix the arguments and call the tool again."...)
	return string(b)
}
