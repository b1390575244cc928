package durable

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// ActivityInfo describes the activity attempt a context belongs to.
type ActivityInfo struct {
	RunID    string
	Workflow string
	Activity string
	Step     int
	Attempt  int
	// IdempotencyKey is the same for every attempt of the same step of
	// the same run, and differs between steps: pass it to external systems
	// so that a retried attempt does not repeat a side effect.
	IdempotencyKey string
}

type activityInfoKey struct{}

// ActivityInfoFrom returns the info of the activity attempt that ctx
// belongs to; ok is false outside activities.
func ActivityInfoFrom(ctx context.Context) (info ActivityInfo, ok bool) {
	info, ok = ctx.Value(activityInfoKey{}).(ActivityInfo)
	return info, ok
}

type heartbeatKey struct{}

// Heartbeat tells the worker that a long activity is alive. An activity
// with a HeartbeatTimeout must call it at least that often, or its attempt
// is canceled and fails with ErrHeartbeatTimeout. Outside activities it
// does nothing.
func Heartbeat(ctx context.Context) {
	if hb, ok := ctx.Value(heartbeatKey{}).(*heartbeat); ok {
		hb.beat()
	}
}

// heartbeat cancels an attempt when it stops beating.
type heartbeat struct {
	mu      sync.Mutex
	clock   backend.Clock
	timeout time.Duration
	cancel  context.CancelCauseFunc
	stop    func() bool
}

func (h *heartbeat) beat() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != nil {
		h.stop()
	}
	h.stop = h.clock.AfterFunc(h.timeout, func() { h.cancel(ErrHeartbeatTimeout) })
}

func (h *heartbeat) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != nil {
		h.stop()
	}
}

// attemptResult is the outcome of one activity attempt.
type attemptResult struct {
	step, attempt int
	payload       []byte
	failure       *backend.Failure
	retryAfter    time.Duration
	// cutOff says that the attempt failed because its worker stopped
	// (its context was canceled from above, not by a timeout or the
	// run's cancellation): that is not the activity's outcome, so it is
	// not recorded, and whoever takes the run over records the attempt
	// as lost (KindLost).
	cutOff bool
}

// runAttempt runs one attempt of an activity with its timeouts, turning
// errors, panics and timeouts into a Failure. It returns when the attempt
// is over, even if the activity function ignores its context and goes on.
// cutOffGrace is how long an attempt whose context ended waits for its
// function to return before it is given up (real time, whatever the
// worker's clock).
const cutOffGrace = 50 * time.Millisecond

func runAttempt(ctx context.Context, clock backend.Clock, fn ActivityFunc, info ActivityInfo, opts ActivityOptions, input []byte) attemptResult {
	res := attemptResult{step: info.Step, attempt: info.Attempt}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ctx = context.WithValue(ctx, activityInfoKey{}, info)
	stopTimeout := clock.AfterFunc(opts.startToClose(), func() { cancel(ErrTimeout) })
	defer stopTimeout()
	if opts.HeartbeatTimeout > 0 {
		hb := &heartbeat{clock: clock, timeout: opts.HeartbeatTimeout, cancel: cancel}
		hb.beat()
		defer hb.end()
		ctx = context.WithValue(ctx, heartbeatKey{}, hb)
	}

	type outcome struct {
		out []byte
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- outcome{err: &backend.Failure{Message: fmt.Sprintf("activity %s panicked: %v", info.Activity, r),
					Kind: backend.KindPanic, Type: fmt.Sprintf("%T", r), Stack: string(debug.Stack())}}
			}
		}()
		out, err := fn(ctx, input)
		done <- outcome{out, err}
	}()

	var o outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		// A function that ends as its context does (it failed, or
		// finished, at the moment the worker stopped) has its outcome
		// kept, not taken for a cut-off; one that does not return
		// promptly is left behind.
		grace := time.NewTimer(cutOffGrace)
		select {
		case o = <-done:
		case <-grace.C:
			o.err = ctx.Err()
		}
		grace.Stop()
	}
	if o.err == nil {
		res.payload = o.out
		return res
	}
	if stoppedByWorker(ctx) && errors.Is(o.err, context.Canceled) {
		res.cutOff = true // the function gave up because its context ended
		return res
	}
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil && cause != context.Canceled {
		// The attempt was cut short: report why, not the context error
		// the function may have returned.
		res.failure = failureOf(fmt.Errorf("%w (%v)", cause, o.err))
		if cause == ErrTimeout {
			res.failure.Message = fmt.Sprintf("activity %s timed out after %v", info.Activity, opts.startToClose())
		}
		return res
	}
	res.failure = failureOf(o.err)
	res.retryAfter = retryAfter(o.err)
	return res
}

// stoppedByWorker reports whether an attempt's context ended because its
// worker stopped or lost the run: canceled from above, not by the
// attempt's timeouts or the run's cancellation.
func stoppedByWorker(ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	cause := context.Cause(ctx)
	return cause == context.Canceled || errors.Is(cause, errLeaseLost)
}
