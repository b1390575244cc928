package durable_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
)

// crashingActivity is an activity whose first lose attempts do their effect
// and then hang until their worker stops: each is lost with its worker.
// Later attempts return the effect's result.
func crashingActivity(lose int, effects map[string]int, started chan<- int) *durable.Activity[string, string] {
	return durable.NewActivity("charge", func(ctx context.Context, order string) (string, error) {
		info, _ := durable.ActivityInfoFrom(ctx)
		effects[info.IdempotencyKey]++ // the effect, keyed: runs once per key in a real system
		started <- info.Attempt
		if info.Attempt <= lose {
			<-ctx.Done() // the worker dies after the effect, before the result
			return "", ctx.Err()
		}
		return "charged " + order, nil
	})
}

// loseAttempts starts a worker lose times, stopping it while the activity's
// attempt runs, then starts one that stays up.
func loseAttempts(t *testing.T, e *env, wf durable.WorkflowDefinition, lose int, started <-chan int) {
	t.Helper()
	for i := 1; i <= lose; i++ {
		w := durable.NewWorker(e.store, durable.WorkerOptions{Logger: quietLogger(), LeaseTTL: time.Hour})
		w.Register(wf)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		select {
		case attempt := <-started:
			require.Equal(t, i, attempt, "attempt run by worker %d", i)
		case <-time.After(10 * time.Second):
			t.Fatalf("worker %d: no attempt started", i)
		}
		stop()
		require.NoError(t, <-done)
	}
	e.start(wf)
}

// Attempts lost with their workers have a budget of their own: more of
// them than MaximumAttempts still end with the activity's real result, and
// the history records each as lost, not failed.
func TestLostAttemptsDoNotSpendFailureBudget(t *testing.T) {
	const lose = 3
	effects := map[string]int{}
	started := make(chan int, 1)
	charge := crashingActivity(lose, effects, started).WithOptions(durable.ActivityOptions{
		RetryPolicy: durable.RetryPolicy{MaximumAttempts: 2, InitialInterval: time.Millisecond}})
	wf := durable.NewWorkflow("checkout", func(ctx durable.Context, order string) (string, error) {
		return durable.Execute(ctx, charge, order)
	})
	e := newIdleEnv(t)
	run, err := wf.Start(ctxT(t), e.client, "lost-3", "order-1")
	require.NoError(t, err)
	loseAttempts(t, e, wf, lose, started)

	got, err := run.Result(ctxT(t))
	require.NoError(t, err, "lost attempts were reported as the activity's failure")
	assert.Equal(t, "charged order-1", got)
	assert.Equal(t, lose+1, <-started, "attempt that completed")
	require.Len(t, effects, 1, "every attempt has the same idempotency key")

	history, err := run.History(ctxT(t))
	require.NoError(t, err)
	var lost []int
	for _, ev := range history {
		switch ev.Type {
		case backend.EventActivityAttemptFailed:
			require.NotNil(t, ev.Failure)
			assert.Equal(t, backend.KindLost, ev.Failure.Kind, "attempt %d", ev.Attempt)
			lost = append(lost, ev.Attempt)
		case backend.EventActivityFailed:
			t.Fatalf("activity failed: %+v", ev.Failure)
		}
	}
	assert.Equal(t, []int{1, 2, 3}, lost, "attempts recorded as lost")
}

// Lost attempts past MaximumLostAttempts fail the activity with
// ErrAttemptLost, saying the limit was reached.
func TestLostAttemptsPastBudgetFail(t *testing.T) {
	const lose = 2
	effects := map[string]int{}
	started := make(chan int, 1)
	charge := crashingActivity(lose, effects, started).WithOptions(durable.ActivityOptions{
		RetryPolicy: durable.RetryPolicy{MaximumLostAttempts: lose}})
	wf := durable.NewWorkflow("checkout", func(ctx durable.Context, order string) (string, error) {
		return durable.Execute(ctx, charge, order)
	})
	e := newIdleEnv(t)
	run, err := wf.Start(ctxT(t), e.client, "lost-2", "order-1")
	require.NoError(t, err)
	loseAttempts(t, e, wf, lose, started)

	_, err = run.Result(ctxT(t))
	require.Error(t, err)
	assert.ErrorIs(t, err, durable.ErrAttemptLost)
	assert.Contains(t, err.Error(), "2 attempts lost, the limit")
	history, err := run.History(ctxT(t))
	require.NoError(t, err)
	last := history[len(history)-2] // before the run's end
	assert.Equal(t, backend.EventActivityFailed, last.Type)
	assert.Equal(t, lose, last.Attempt, "the failing attempt")
	select {
	case a := <-started:
		t.Fatalf("attempt %d ran past the lost-attempt budget", a)
	default:
	}
}
