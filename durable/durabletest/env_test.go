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
		if err := approval.Send(context.Background(), env.Client, "r1", "dana"); err != nil {
			t.Error(err)
		}
	})
	got, err := durabletest.Run(env, refund, "r1", 1250)
	if err != nil {
		t.Fatal(err)
	}
	// Approved at 50 h, then two retries a minute and two minutes apart.
	if want := "refund-1250 approved by dana at 2026-01-03 11:03:00"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	durabletest.Golden(t, filepath.Join("testdata", "refund.history.json"), env.History("r1"), *update)
}

func TestTimeout(t *testing.T) {
	env := durabletest.New(t, refund)
	got, err := durabletest.Run(env, refund, "r2", 100)
	if err != nil || got != "expired" {
		t.Fatalf("got %q, %v", got, err)
	}
	if now := env.Clock.Now(); now.Sub(durabletest.Start()) != 72*time.Hour {
		t.Errorf("clock moved to %v", now)
	}
}

func TestStuck(t *testing.T) {
	waiter := durable.NewWorkflow("waiter", func(ctx durable.Context, _ struct{}) (string, error) {
		return approval.Receive(ctx)
	})
	env := durabletest.New(t, waiter)
	if _, err := durabletest.Run(env, waiter, "w", struct{}{}); !errors.Is(err, durabletest.ErrStuck) {
		t.Fatalf("err = %v, want ErrStuck", err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	history, err := backend.UnmarshalHistory(f)
	if err != nil {
		t.Fatal(err)
	}
	var nd *durable.NondeterminismError
	if err := durable.ReplayHistory(changed, history); !errors.As(err, &nd) || nd.Step != 2 {
		t.Fatalf("replay of changed code: %v, want a divergence at step 2", err)
	}
}
