package providers

import (
	"errors"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/durable"
)

// The kinds of provider error. Providers return them inside an *Error, so
// errors.Is(err, ErrRateLimited) tells what went wrong whatever the
// provider, and Classify marks them for cairn's retry policy as each one
// says.
var (
	// ErrRateLimited: too many requests (HTTP 429). Retryable, after the
	// wait the provider asked for in Error.RetryAfter, if it did.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: the provider failed or could not be reached (HTTP 5xx,
	// 408, 409, a timeout, a refused or reset connection). Retryable.
	ErrUnavailable = errors.New("provider unavailable")
	// ErrTruncated: the answer was cut off or could not be read in full (a
	// stream that ended before its finish reason and end marker, a chunk
	// that is not JSON, a response without a choice). Retryable; never
	// mistake it for a short answer.
	ErrTruncated = errors.New("truncated response")
	// ErrInvalidRequest: the provider rejected the request as malformed or
	// impossible (HTTP 400, 404, 422, an unknown model, a bad schema).
	// Not retryable: the same request fails again.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrAuth: missing, wrong or insufficient credentials (HTTP 401, 403).
	// Not retryable.
	ErrAuth = errors.New("not authorized")
	// ErrQuotaExceeded: the account has no quota or credit left (a 429 whose
	// code is insufficient_quota). Not retryable.
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrContentPolicy: the request was refused by a content policy or
	// filter. Not retryable.
	ErrContentPolicy = errors.New("content policy violation")
)

// Error is an error reported by a model provider, or met on the way to it.
// It matches its Kind and its cause with errors.Is and errors.As.
type Error struct {
	Kind       error  // one of the Err kinds of this package
	Provider   string // "openai", ...
	StatusCode int    // the HTTP status, 0 if none (an error inside a stream, a transport error)
	Code       string // the provider's error code or type, e.g. "rate_limit_exceeded"
	Message    string // the provider's message
	// RetryAfter is how long the provider asked to wait before trying
	// again, 0 if it did not say.
	RetryAfter time.Duration
	Err        error // the cause, if any
}

func (e *Error) Error() string {
	s := e.Provider + ": " + e.Kind.Error()
	switch {
	case e.StatusCode != 0 && e.Code != "":
		s += fmt.Sprintf(" (%d %s)", e.StatusCode, e.Code)
	case e.StatusCode != 0:
		s += fmt.Sprintf(" (%d)", e.StatusCode)
	case e.Code != "":
		s += " (" + e.Code + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Retryable reports whether the same request may succeed if tried again.
func (e *Error) Retryable() bool {
	return errors.Is(e.Kind, ErrRateLimited) || errors.Is(e.Kind, ErrUnavailable) || errors.Is(e.Kind, ErrTruncated)
}

// Classify returns e marked for the durable retry policy: with
// durable.NonRetryable unless e is Retryable, and with durable.RetryAfter
// when the provider asked for a wait. Providers return what it returns.
func Classify(e *Error) error {
	if !e.Retryable() {
		return durable.NonRetryable(e)
	}
	if e.RetryAfter > 0 {
		return durable.RetryAfter(e, e.RetryAfter)
	}
	return e
}
