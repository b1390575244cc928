package durable

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
)

// An attempt whose worker stops is cut off, not failed: the error the
// activity returns when its context ends is not the activity's outcome.
// (The stress runs of issue 20 found a stopping worker recording it as an
// ordinary failure, when its executor happened to read the result before
// its own context's end.)
func TestAttemptCutOffByItsWorker(t *testing.T) {
	blocking := func(ctx context.Context, _ []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	info := ActivityInfo{Activity: "slow", Step: 1, Attempt: 1}
	for _, stop := range []struct {
		name   string
		cancel func(context.CancelCauseFunc)
	}{
		{"worker stopped", func(c context.CancelCauseFunc) { c(nil) }},
		{"lease lost", func(c context.CancelCauseFunc) { c(errLeaseLost) }},
	} {
		t.Run(stop.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(time.Millisecond, func() { stop.cancel(cancel) })
			r := runAttempt(ctx, backend.SystemClock(), blocking, info, ActivityOptions{}, nil)
			assert.True(t, r.cutOff, "cut off")
			assert.Nil(t, r.failure, "a cut-off attempt has no failure of its own")
		})
	}

	// What is the activity's own outcome stays a failure.
	for _, own := range []struct {
		name  string
		opts  ActivityOptions
		cause error // the run's cancellation, if any
		kind  backend.FailureKind
	}{
		{"timeout", ActivityOptions{StartToCloseTimeout: time.Millisecond}, nil, backend.KindTimeout},
		{"run canceled", ActivityOptions{}, ErrCanceled, backend.KindCanceled},
	} {
		t.Run(own.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if own.cause != nil {
				time.AfterFunc(time.Millisecond, func() { cancel(own.cause) })
			}
			r := runAttempt(ctx, backend.SystemClock(), blocking, info, own.opts, nil)
			assert.False(t, r.cutOff)
			require.NotNil(t, r.failure)
			assert.Equal(t, own.kind, r.failure.Kind)
		})
	}

	// An error that is not the context's is the activity's, even if the
	// worker stops at the same moment.
	ctx, cancel := context.WithCancel(context.Background())
	failing := func(context.Context, []byte) ([]byte, error) { cancel(); return nil, errors.New("card declined") }
	r := runAttempt(ctx, backend.SystemClock(), failing, info, ActivityOptions{}, nil)
	assert.False(t, r.cutOff)
	require.NotNil(t, r.failure)
	assert.Equal(t, "card declined", r.failure.Message)
	assert.Equal(t, "*errors.errorString", r.failure.Type)
}
