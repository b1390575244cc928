package durabletest_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	charge = durable.NewActivity("charge", func(ctx context.Context, cents int) (string, error) {
		return "", errors.New("the real payment API is not for tests")
	}, durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{InitialInterval: time.Minute, MaximumAttempts: 3}})
	approval = durable.NewSignal[string]("approval")
)

// refund waits up to three days for approval, then charges back, retrying.
var refund = durable.NewWorkflow("refund", func(ctx durable.Context, cents int) (string, error) {
	who, ok, err := approval.ReceiveTimeout(ctx, 72*time.Hour)
	if err != nil {
		return "", err
	}
	if !ok {
		return "expired", nil
	}
	id, err := durable.Execute(ctx, charge, -cents)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s approved by %s at %s", id, who, durable.Now(ctx).Format(time.DateTime)), nil
})

func TestTimeSkipsAndMocks(t *testing.T) {
	env := durabletest.New(t, refund)
	attempts := 0
	durabletest.Mock(env, charge, func(ctx context.Context, cents int) (string, error) {
		if attempts++; attempts < 3 {
			return "", errors.New("gateway busy")
		}
		return fmt.Sprintf("refund%d", cents), nil
	})
	env.After(50*time.Hour, func() {
		assert.NoError(t, approval.Send(context.Background(), env.Client, "r1", "dana"))
	})
	got, err := durabletest.Run(env, refund, "r1", 1250)
	require.NoError(t, err)
	// Approved at 50 h, then two retries a minute and two minutes apart.
	assert.Equal(t, "refund-1250 approved by dana at 2026-01-03 11:03:00", got)
	durabletest.Golden(t, filepath.Join("testdata", "refund.history.json"), env.History("r1"), *update)
}

func TestTimeout(t *testing.T) {
	env := durabletest.New(t, refund)
	got, err := durabletest.Run(env, refund, "r2", 100)
	require.NoError(t, err)
	require.Equal(t, "expired", got)
	now := env.Clock.Now()
	assert.Equal(t, 72*time.Hour, now.Sub(durabletest.Start()), "clock moved to %v", now)
}

func TestStuck(t *testing.T) {
	waiter := durable.NewWorkflow("waiter", func(ctx durable.Context, _ struct{}) (string, error) {
		return approval.Receive(ctx)
	})
	env := durabletest.New(t, waiter)
	_, err := durabletest.Run(env, waiter, "w", struct{}{})
	assert.ErrorIs(t, err, durabletest.ErrStuck)
}

func TestCheckReplay(t *testing.T) {
	durabletest.CheckReplay(t, refund, filepath.Join("testdata", "refund.history.json"))

	// The same history against code that changed incompatibly diverges.
	changed := durable.NewWorkflow("refund", func(ctx durable.Context, cents int) (string, error) {
		if _, _, err := approval.ReceiveTimeout(ctx, 72*time.Hour); err != nil {
			return "", err
		}
		return durable.Execute(ctx, durable.NewActivity("charge_v2", func(context.Context, int) (string, error) { return "", nil }), -cents)
	})
	f, err := os.Open(filepath.Join("testdata", "refund.history.json"))
	require.NoError(t, err)
	defer f.Close()
	history, err := backend.UnmarshalHistory(f)
	require.NoError(t, err)
	var nd *durable.NondeterminismError
	err = durable.ReplayHistory(changed, history)
	require.ErrorAs(t, err, &nd, "replay of changed code: want a divergence at step 2")
	assert.Equal(t, 2, nd.Step, "replay of changed code: want a divergence at step 2")
}
