package durable_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
)

var approve = durable.NewSignal[string]("approve")

func TestSignalsBeforeAndAfterWait(t *testing.T) {
	gate := durable.NewSignal[struct{}]("gate")
	wf := durable.NewWorkflow("collect", func(ctx durable.Context, n int) ([]string, error) {
		// Do not listen to approve until the gate opens: signals sent
		// before must be kept, in order.
		if _, err := gate.Receive(ctx); err != nil {
			return nil, err
		}
		var got []string
		for range n {
			s, err := approve.Receive(ctx)
			if err != nil {
				return nil, err
			}
			got = append(got, s)
		}
		return got, nil
	})
	e := newEnv(t, wf)
	ctx := ctxT(t)
	run, err := wf.Start(ctx, e.client, "collect", 4)
	require.NoError(t, err)
	e.waitStatus("collect", backend.StatusWaiting)
	for _, s := range []string{"a", "b"} {
		require.NoError(t, approve.Send(ctx, e.client, "collect", s))
	}
	require.NoError(t, gate.Send(ctx, e.client, "collect", struct{}{}))
	info := e.waitStatus("collect", backend.StatusWaiting)
	for info.Waiting != "signal approve" {
		time.Sleep(time.Millisecond)
		info, _ = e.client.Describe(ctx, "collect")
	}
	for _, s := range []string{"c", "d"} {
		require.NoError(t, approve.Send(ctx, e.client, "collect", s))
	}
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "abcd", strings.Join(got, ""), "result %v", got)
	assert.ErrorIs(t, approve.Send(ctx, e.client, "collect", "late"), durable.ErrRunEnded, "signal to ended run")
	assert.ErrorIs(t, approve.Send(ctx, e.client, "nope", "x"), backend.ErrRunNotFound, "signal to unknown run")
}

func TestReceiveTimeout(t *testing.T) {
	wf := durable.NewWorkflow("approval", func(ctx durable.Context, d time.Duration) (string, error) {
		s, ok, err := approve.ReceiveTimeout(ctx, d)
		if err != nil {
			return "", err
		}
		if !ok {
			return "timed out", nil
		}
		return "approved by " + s, nil
	})
	e := newEnv(t, wf)
	ctx := ctxT(t)

	timedOut, err := wf.Start(ctx, e.client, "slow", 20*time.Millisecond)
	require.NoError(t, err)
	got, err := timedOut.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "timed out", got)

	signaled, err := wf.Start(ctx, e.client, "fast", time.Hour)
	require.NoError(t, err)
	e.waitStatus("fast", backend.StatusWaiting)
	require.NoError(t, approve.Send(ctx, e.client, "fast", "ann"))
	got, err = signaled.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "approved by ann", got)
	hist, _ := e.client.History(ctx, "fast")
	var types []string
	for _, ev := range hist {
		types = append(types, string(ev.Type))
	}
	assert.Equal(t, "run_started timer_started signal_received timer_canceled run_completed", strings.Join(types, " "), "history")
}

func TestSelectRecordsTheWinner(t *testing.T) {
	slow := durable.NewActivity("slow", func(ctx context.Context, d time.Duration) (string, error) {
		time.Sleep(d)
		return "slow", nil
	})
	fast := durable.NewActivity("fast", func(ctx context.Context, _ struct{}) (string, error) { return "fast", nil })
	wf := durable.NewWorkflow("race", func(ctx durable.Context, _ struct{}) (string, error) {
		a := durable.StartActivity(ctx, slow, 50*time.Millisecond)
		b := durable.StartActivity(ctx, fast, struct{}{})
		i, err := durable.Select(ctx, a, b)
		if err != nil {
			return "", err
		}
		winner := []durable.Future[string]{a, b}[i]
		v, err := winner.Get(ctx)
		if err != nil {
			return "", err
		}
		// Block on a signal so that the run is replayed when it arrives.
		if _, err := approve.Receive(ctx); err != nil {
			return "", err
		}
		return v, nil
	})
	e := newEnv(t, wf)
	ctx := ctxT(t)
	run, err := wf.Start(ctx, e.client, "race", struct{}{})
	require.NoError(t, err)
	e.waitStatus("race", backend.StatusWaiting)
	// Deploy: a new worker replays the run; the winner must be the same.
	e.start(wf)
	require.NoError(t, approve.Send(ctx, e.client, "race", "go"))
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "fast", got)
}

func TestCancelRunsCompensations(t *testing.T) {
	var log strings.Builder
	var canceledSeen atomic.Bool
	step := func(name string) *durable.Activity[string, string] {
		return durable.NewActivity(name, func(ctx context.Context, in string) (string, error) {
			fmt.Fprintf(&log, "%s(%s) ", name, in)
			return in, nil
		})
	}
	reserve, release, charge, refund := step("reserve"), step("release"), step("charge"), step("refund")
	ship := durable.NewActivity("ship", func(ctx context.Context, in string) (string, error) {
		<-ctx.Done() // ships slowly; sees the cancellation
		canceledSeen.Store(errors.Is(context.Cause(ctx), durable.ErrCanceled))
		return "", ctx.Err()
	})
	wf := durable.NewWorkflow("order", func(ctx durable.Context, id string) (string, error) {
		var saga durable.Saga
		if _, err := durable.Execute(ctx, reserve, id); err != nil {
			return "", err
		}
		saga.Add(func(ctx durable.Context) error { _, err := durable.Execute(ctx, release, id); return err })
		if _, err := durable.Execute(ctx, charge, id); err != nil {
			return "", errors.Join(err, saga.Compensate(ctx))
		}
		saga.Add(func(ctx durable.Context) error { _, err := durable.Execute(ctx, refund, id); return err })
		if _, err := durable.Execute(ctx, ship, id); err != nil {
			return "", errors.Join(err, saga.Compensate(ctx))
		}
		return "shipped", nil
	})
	e := newEnv(t, wf)
	ctx := ctxT(t)
	run, err := wf.Start(ctx, e.client, "o-1", "o-1")
	require.NoError(t, err)
	for info := e.waitStatus("o-1", backend.StatusRunning); !strings.Contains(info.Waiting, "ship"); {
		time.Sleep(time.Millisecond)
		info, _ = e.client.Describe(ctx, "o-1")
	}
	require.NoError(t, e.client.Cancel(durable.WithSender(ctx, "ops@example.com"), "o-1"))
	_, err = run.Result(ctx)
	var runErr *durable.RunError
	require.ErrorAs(t, err, &runErr, "result error: want a canceled RunError")
	require.Equal(t, backend.StatusCanceled, runErr.Status, "result error: want a canceled RunError")
	require.ErrorIs(t, err, durable.ErrCanceled, "result error: want a canceled RunError")
	assert.Equal(t, "reserve(o-1) charge(o-1) refund(o-1) release(o-1) ", log.String(), "activities")
	// The run may end before the canceled activity's function returns.
	assert.Eventually(t, canceledSeen.Load, 5*time.Second, time.Millisecond,
		"running activity did not see its context canceled with ErrCanceled")
	hist, _ := e.client.History(ctx, "o-1")
	for _, ev := range hist {
		if ev.Type == backend.EventCancelRequested {
			assert.Equal(t, "ops@example.com", ev.Sender, "cancel sender")
		}
	}
}

func TestContinueAsNew(t *testing.T) {
	var calls counter
	tick := durable.NewActivity("tick", func(ctx context.Context, n int) (int, error) {
		calls.add(fmt.Sprint(n))
		return n + 1, nil
	})
	msg := durable.NewSignal[string]("msg")
	type state struct {
		N    int
		Seen []string
	}
	wf := durable.NewWorkflow("session", func(ctx durable.Context, s state) (state, error) {
		n, err := durable.Execute(ctx, tick, s.N)
		if err != nil {
			return s, err
		}
		m, err := msg.Receive(ctx)
		if err != nil {
			return s, err
		}
		s.N, s.Seen = n, append(s.Seen, m)
		if n < 3 {
			return s, durable.ContinueAsNew(ctx, s)
		}
		return s, nil
	})
	e := newEnv(t, wf)
	ctx := ctxT(t)
	run, err := wf.Start(ctx, e.client, "chat", state{})
	require.NoError(t, err)
	// Three messages at once: the second and third arrive while the
	// first generation runs and must be carried into the next ones.
	for _, m := range []string{"hi", "how", "bye"} {
		require.NoError(t, msg.Send(ctx, e.client, "chat", m))
	}
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, got.N, "result %+v", got)
	assert.Equal(t, "hi how bye", strings.Join(got.Seen, " "), "result %+v", got)
	info, _ := e.client.Describe(ctx, "chat")
	assert.Equal(t, 2, info.Generation, "generation")
	hist, _ := e.client.History(ctx, "chat")
	require.NotEmpty(t, hist, "last history")
	assert.Equal(t, backend.EventRunStarted, hist[0].Type, "last history should be fresh")
	assert.LessOrEqual(t, len(hist), 6, "last history should be short")
	for _, n := range []string{"0", "1", "2"} {
		assert.Equal(t, 1, calls.get(n), "tick(%s) runs", n)
	}
}

type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

func TestRetries(t *testing.T) {
	var flaky, broken, marked atomic.Int32
	retry := durable.RetryPolicy{InitialInterval: time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 4 * time.Millisecond,
		MaximumAttempts: 5, NonRetryableErrorTypes: []string{"*durable_test.permanentError"}}
	flakyAct := durable.NewActivity("flaky", func(ctx context.Context, _ struct{}) (int, error) {
		if n := flaky.Add(1); n < 3 {
			return 0, fmt.Errorf("try %d: %w", n, errors.New("temporarily unavailable"))
		}
		return int(flaky.Load()), nil
	}, durable.ActivityOptions{RetryPolicy: retry})
	brokenAct := durable.NewActivity("broken", func(ctx context.Context, _ struct{}) (int, error) {
		broken.Add(1)
		return 0, fmt.Errorf("wrapped: %w", &permanentError{"bad card"})
	}, durable.ActivityOptions{RetryPolicy: retry})
	markedAct := durable.NewActivity("marked", func(ctx context.Context, _ struct{}) (int, error) {
		marked.Add(1)
		return 0, durable.NonRetryable(errors.New("invalid request"))
	}, durable.ActivityOptions{RetryPolicy: retry})
	exhausted := durable.NewActivity("exhausted", func(ctx context.Context, _ struct{}) (int, error) {
		return 0, errors.New("always down")
	}, durable.ActivityOptions{RetryPolicy: retry})
	wf := durable.NewWorkflow("retries", func(ctx durable.Context, _ struct{}) (string, error) {
		var out []string
		for _, act := range []*durable.Activity[struct{}, int]{flakyAct, brokenAct, markedAct, exhausted} {
			n, err := durable.Execute(ctx, act, struct{}{})
			var ae *durable.ActivityError
			if errors.As(err, &ae) {
				out = append(out, fmt.Sprintf("%s failed after %d: %s", act.Name(), ae.Attempt, ae.Failure.Type))
				continue
			}
			out = append(out, fmt.Sprintf("%s=%d", act.Name(), n))
		}
		return strings.Join(out, "; "), nil
	})
	e := newEnv(t, wf)
	ctx := ctxT(t)
	run, _ := wf.Start(ctx, e.client, "r", struct{}{})
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "flaky=3; broken failed after 1: *durable_test.permanentError; marked failed after 1: *errors.errorString; exhausted failed after 5: *errors.errorString", got)
	hist, _ := e.client.History(ctx, "r")
	var waits []time.Duration
	for _, ev := range hist {
		if ev.Type == backend.EventActivityAttemptFailed && hist[stepEvent(hist, ev.Step)].Name == "exhausted" {
			waits = append(waits, ev.FireAt.Sub(ev.Time).Round(time.Millisecond))
		}
	}
	assert.Equal(t, []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond}, waits, "backoff")
}

func TestTimeoutsAndHeartbeats(t *testing.T) {
	once := durable.RetryPolicy{MaximumAttempts: 1}
	hang := durable.NewActivity("hang", func(ctx context.Context, _ struct{}) (struct{}, error) {
		select {} // ignores its context: the attempt must end anyway
	}, durable.ActivityOptions{StartToCloseTimeout: 20 * time.Millisecond, RetryPolicy: once})
	silent := durable.NewActivity("silent", func(ctx context.Context, _ struct{}) (struct{}, error) {
		<-ctx.Done()
		return struct{}{}, ctx.Err()
	}, durable.ActivityOptions{HeartbeatTimeout: 20 * time.Millisecond, RetryPolicy: once})
	// beating outlives its heartbeat timeout twice over, beating every
	// 5 ms. The timeout is long against a beat, so that a loaded machine
	// that stalls the activity for a while (seen: over 30 ms under -race
	// and a CPU burner) does not make it time out.
	const beatTimeout = 250 * time.Millisecond
	beating := durable.NewActivity("beating", func(ctx context.Context, _ struct{}) (string, error) {
		for start := time.Now(); time.Since(start) < 2*beatTimeout; {
			time.Sleep(5 * time.Millisecond)
			durable.Heartbeat(ctx)
		}
		return "alive", nil
	}, durable.ActivityOptions{HeartbeatTimeout: beatTimeout, RetryPolicy: once})
	wf := durable.NewWorkflow("timeouts", func(ctx durable.Context, _ struct{}) (string, error) {
		_, err1 := durable.Execute(ctx, hang, struct{}{})
		_, err2 := durable.Execute(ctx, silent, struct{}{})
		v, err3 := durable.Execute(ctx, beating, struct{}{})
		return fmt.Sprintf("%v %v %s %v", errors.Is(err1, durable.ErrTimeout), errors.Is(err2, durable.ErrHeartbeatTimeout), v, err3), nil
	})
	e := newEnv(t, wf)
	ctx := ctxT(t)
	run, _ := wf.Start(ctx, e.client, "t", struct{}{})
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "true true alive <nil>", got)
}

func TestPanics(t *testing.T) {
	var attempts atomic.Int32
	shaky := durable.NewActivity("shaky", func(ctx context.Context, _ struct{}) (string, error) {
		if attempts.Add(1) == 1 {
			var m map[string]int
			m["boom"]++ // panics
		}
		return "ok", nil
	}, durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{InitialInterval: time.Millisecond}})
	wf := durable.NewWorkflow("panicky", func(ctx durable.Context, crash bool) (string, error) {
		v, err := durable.Execute(ctx, shaky, struct{}{})
		if err != nil {
			return "", err
		}
		if crash {
			panic("workflow bug")
		}
		return v, nil
	})
	e := newEnv(t, wf)
	ctx := ctxT(t)
	run, _ := wf.Start(ctx, e.client, "activity-panic", false)
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ok", got)
	hist, _ := e.client.History(ctx, "activity-panic")
	var failed *backend.Failure
	for _, ev := range hist {
		if ev.Type == backend.EventActivityAttemptFailed {
			failed = ev.Failure
		}
	}
	if assert.NotNil(t, failed, "the panicked attempt's failure") {
		assert.Equal(t, backend.KindPanic, failed.Kind, "panicked attempt recorded as %+v", failed)
		assert.Contains(t, failed.Stack, "features_test.go", "panicked attempt's stack")
	}

	crash, _ := wf.Start(ctx, e.client, "workflow-panic", true)
	_, err = crash.Result(ctx)
	require.ErrorIs(t, err, durable.ErrPanic, "want a workflow panic")
	require.ErrorContains(t, err, "workflow bug", "want a workflow panic")
	info, _ := e.client.Describe(ctx, "workflow-panic")
	assert.Equal(t, backend.StatusFailed, info.Status)
	require.NotNil(t, info.Failure, "the failed run's failure")
	assert.Contains(t, info.Failure.Stack, "features_test.go", "the failed run's stack")
}

// TestContinueAsNewLeavesLaterMessages sends several messages at once to a
// workflow that continues as new after each: those it did not take must
// reach the next generations, not be dropped with the old history.
func TestContinueAsNewLeavesLaterMessages(t *testing.T) {
	msg := durable.NewSignal[string]("msg")
	wf := durable.NewWorkflow("relay", func(ctx durable.Context, seen []string) ([]string, error) {
		m, err := msg.Receive(ctx)
		if err != nil {
			return nil, err
		}
		seen = append(seen, m)
		if len(seen) < 4 {
			return nil, durable.ContinueAsNew(ctx, seen)
		}
		return seen, nil
	})
	e := newIdleEnv(t)
	ctx := ctxT(t)
	run, err := wf.Start(ctx, e.client, "relay", []string{})
	require.NoError(t, err)
	for _, m := range []string{"a", "b", "c", "d"} {
		require.NoError(t, msg.Send(ctx, e.client, "relay", m))
	}
	e.start(wf) // all four wait in the inbox when the worker first looks
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "abcd", strings.Join(got, ""), "result %v", got)
}
