package durable_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus("collect", backend.StatusWaiting)
	for _, s := range []string{"a", "b"} {
		if err := approve.Send(ctx, e.client, "collect", s); err != nil {
			t.Fatal(err)
		}
	}
	if err := gate.Send(ctx, e.client, "collect", struct{}{}); err != nil {
		t.Fatal(err)
	}
	info := e.waitStatus("collect", backend.StatusWaiting)
	for info.Waiting != "signal approve" {
		time.Sleep(time.Millisecond)
		info, _ = e.client.Describe(ctx, "collect")
	}
	for _, s := range []string{"c", "d"} {
		if err := approve.Send(ctx, e.client, "collect", s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := run.Result(ctx)
	if err != nil || strings.Join(got, "") != "abcd" {
		t.Fatalf("result = %v, %v; want [a b c d]", got, err)
	}
	if err := approve.Send(ctx, e.client, "collect", "late"); !errors.Is(err, durable.ErrRunEnded) {
		t.Errorf("signal to ended run: %v, want ErrRunEnded", err)
	}
	if err := approve.Send(ctx, e.client, "nope", "x"); !errors.Is(err, backend.ErrRunNotFound) {
		t.Errorf("signal to unknown run: %v, want ErrRunNotFound", err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	if got, err := timedOut.Result(ctx); err != nil || got != "timed out" {
		t.Fatalf("result = %q, %v", got, err)
	}

	signaled, err := wf.Start(ctx, e.client, "fast", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus("fast", backend.StatusWaiting)
	if err := approve.Send(ctx, e.client, "fast", "ann"); err != nil {
		t.Fatal(err)
	}
	if got, err := signaled.Result(ctx); err != nil || got != "approved by ann" {
		t.Fatalf("result = %q, %v", got, err)
	}
	hist, _ := e.client.History(ctx, "fast")
	var types []string
	for _, ev := range hist {
		types = append(types, string(ev.Type))
	}
	want := "run_started timer_started signal_received timer_canceled run_completed"
	if strings.Join(types, " ") != want {
		t.Errorf("history = %v, want %s", types, want)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus("race", backend.StatusWaiting)
	// Deploy: a new worker replays the run; the winner must be the same.
	e.start(wf)
	if err := approve.Send(ctx, e.client, "race", "go"); err != nil {
		t.Fatal(err)
	}
	if got, err := run.Result(ctx); err != nil || got != "fast" {
		t.Fatalf("result = %q, %v; want fast", got, err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	for info := e.waitStatus("o-1", backend.StatusRunning); !strings.Contains(info.Waiting, "ship"); {
		time.Sleep(time.Millisecond)
		info, _ = e.client.Describe(ctx, "o-1")
	}
	if err := e.client.Cancel(durable.WithSender(ctx, "ops@example.com"), "o-1"); err != nil {
		t.Fatal(err)
	}
	_, err = run.Result(ctx)
	var runErr *durable.RunError
	if !errors.As(err, &runErr) || runErr.Status != backend.StatusCanceled || !errors.Is(err, durable.ErrCanceled) {
		t.Fatalf("result error = %v, want a canceled RunError", err)
	}
	if got, want := log.String(), "reserve(o-1) charge(o-1) refund(o-1) release(o-1) "; got != want {
		t.Errorf("activities = %q, want %q", got, want)
	}
	if !canceledSeen.Load() {
		t.Error("running activity did not see its context canceled with ErrCanceled")
	}
	hist, _ := e.client.History(ctx, "o-1")
	for _, ev := range hist {
		if ev.Type == backend.EventCancelRequested && ev.Sender != "ops@example.com" {
			t.Errorf("cancel sender = %q", ev.Sender)
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
	if err != nil {
		t.Fatal(err)
	}
	// Three messages at once: the second and third arrive while the
	// first generation runs and must be carried into the next ones.
	for _, m := range []string{"hi", "how", "bye"} {
		if err := msg.Send(ctx, e.client, "chat", m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := run.Result(ctx)
	if err != nil || got.N != 3 || strings.Join(got.Seen, " ") != "hi how bye" {
		t.Fatalf("result = %+v, %v", got, err)
	}
	info, _ := e.client.Describe(ctx, "chat")
	if info.Generation != 2 {
		t.Errorf("generation = %d, want 2", info.Generation)
	}
	hist, _ := e.client.History(ctx, "chat")
	if hist[0].Type != backend.EventRunStarted || len(hist) > 6 {
		t.Errorf("last history should be fresh and short, got %d events from %s", len(hist), hist[0].Type)
	}
	for _, n := range []string{"0", "1", "2"} {
		if calls.get(n) != 1 {
			t.Errorf("tick(%s) ran %d times", n, calls.get(n))
		}
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
	want := "flaky=3; broken failed after 1: *durable_test.permanentError; marked failed after 1: *errors.errorString; exhausted failed after 5: *errors.errorString"
	if err != nil || got != want {
		t.Fatalf("result = %q, %v\nwant %q", got, err, want)
	}
	hist, _ := e.client.History(ctx, "r")
	var waits []time.Duration
	for _, ev := range hist {
		if ev.Type == backend.EventActivityAttemptFailed && hist[stepEvent(hist, ev.Step)].Name == "exhausted" {
			waits = append(waits, ev.FireAt.Sub(ev.Time).Round(time.Millisecond))
		}
	}
	if fmt.Sprint(waits) != "[1ms 2ms 4ms 4ms]" {
		t.Errorf("backoff = %v, want [1ms 2ms 4ms 4ms]", waits)
	}
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
	beating := durable.NewActivity("beating", func(ctx context.Context, _ struct{}) (string, error) {
		for range 10 {
			time.Sleep(5 * time.Millisecond)
			durable.Heartbeat(ctx)
		}
		return "alive", nil
	}, durable.ActivityOptions{HeartbeatTimeout: 30 * time.Millisecond, RetryPolicy: once})
	wf := durable.NewWorkflow("timeouts", func(ctx durable.Context, _ struct{}) (string, error) {
		_, err1 := durable.Execute(ctx, hang, struct{}{})
		_, err2 := durable.Execute(ctx, silent, struct{}{})
		v, err3 := durable.Execute(ctx, beating, struct{}{})
		return fmt.Sprintf("%v %v %s %v", errors.Is(err1, durable.ErrTimeout), errors.Is(err2, durable.ErrHeartbeatTimeout), v, err3), nil
	})
	e := newEnv(t, wf)
	ctx := ctxT(t)
	run, _ := wf.Start(ctx, e.client, "t", struct{}{})
	if got, err := run.Result(ctx); err != nil || got != "true true alive <nil>" {
		t.Fatalf("result = %q, %v", got, err)
	}
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
	if got, err := run.Result(ctx); err != nil || got != "ok" {
		t.Fatalf("result = %q, %v", got, err)
	}
	hist, _ := e.client.History(ctx, "activity-panic")
	var failed *backend.Failure
	for _, ev := range hist {
		if ev.Type == backend.EventActivityAttemptFailed {
			failed = ev.Failure
		}
	}
	if failed == nil || failed.Kind != backend.KindPanic || !strings.Contains(failed.Stack, "features_test.go") {
		t.Errorf("panicked attempt recorded as %+v", failed)
	}

	crash, _ := wf.Start(ctx, e.client, "workflow-panic", true)
	_, err := crash.Result(ctx)
	if !errors.Is(err, durable.ErrPanic) || !strings.Contains(err.Error(), "workflow bug") {
		t.Fatalf("err = %v, want a workflow panic", err)
	}
	info, _ := e.client.Describe(ctx, "workflow-panic")
	if info.Status != backend.StatusFailed || !strings.Contains(info.Failure.Stack, "features_test.go") {
		t.Errorf("status %s, stack %q", info.Status, info.Failure.Stack)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b", "c", "d"} {
		if err := msg.Send(ctx, e.client, "relay", m); err != nil {
			t.Fatal(err)
		}
	}
	e.start(wf) // all four wait in the inbox when the worker first looks
	got, err := run.Result(ctx)
	if err != nil || strings.Join(got, "") != "abcd" {
		t.Fatalf("result = %v, %v; want [a b c d]", got, err)
	}
}
