// Package durabletest helps test workflows: an Env runs them on an
// in-memory store with a fake Clock that skips ahead whenever every run
// waits for time, so a workflow that sleeps for days is tested in
// milliseconds; Mock replaces activities; CheckReplay and Golden turn
// recorded histories into tests.
package durabletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// Start is the time an Env's clock starts at.
func Start() time.Time { return time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC) }

// Env runs workflows for a test. Its fields are ready to use directly, for
// example Client to send signals or Clock to read the time.
type Env struct {
	Clock  *Clock
	Store  *inmem.Store
	Client *durable.Client
	Worker *durable.Worker

	t     testing.TB
	mu    sync.Mutex
	mocks map[string]durable.ActivityFunc
}

// New returns an Env whose worker runs the given workflows. Its worker logs
// warnings to t, which may be nil (in examples) to drop them.
func New(t testing.TB, workflows ...durable.WorkflowDefinition) *Env {
	e := &Env{t: t, Clock: NewClock(Start()), mocks: map[string]durable.ActivityFunc{}}
	e.Store = inmem.New(inmem.WithClock(e.Clock))
	e.Client = durable.NewClient(e.Store, durable.ClientOptions{Clock: e.Clock})
	e.Worker = durable.NewWorker(e.Store, durable.WorkerOptions{
		ID: "test-worker", Clock: e.Clock, Logger: testLogger(t),
		ActivityMiddleware: []durable.ActivityMiddleware{e.mockMiddleware},
	})
	e.Worker.Register(workflows...)
	return e
}

// Mock replaces an activity in env: calls to act run fn instead.
func Mock[In, Out any](env *Env, act *durable.Activity[In, Out], fn func(context.Context, In) (Out, error)) {
	env.mu.Lock()
	defer env.mu.Unlock()
	env.mocks[act.Name()] = func(ctx context.Context, input []byte) ([]byte, error) {
		var in In
		if err := json.Unmarshal(input, &in); err != nil {
			return nil, durable.NonRetryable(fmt.Errorf("mock %s: decode input: %w", act.Name(), err))
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	}
}

func (e *Env) mockMiddleware(next durable.ActivityFunc) durable.ActivityFunc {
	return func(ctx context.Context, input []byte) ([]byte, error) {
		info, _ := durable.ActivityInfoFrom(ctx)
		e.mu.Lock()
		mock := e.mocks[info.Activity]
		e.mu.Unlock()
		if mock != nil {
			return mock(ctx, input)
		}
		return next(ctx, input)
	}
}

// After calls f once the clock has moved d past its current time, as part
// of moving time: use it to send a signal or cancel a run at a point of a
// workflow's life ("approve after two days").
func (e *Env) After(d time.Duration, f func()) {
	e.Clock.AfterFunc(d, f)
}

// ErrStuck means a run waits for something that no timer of the Env will
// bring, typically a signal the test did not send.
var ErrStuck = errors.New("run waits for something that will never come")

// Run starts a run of wf and drives it, and every run it causes, until it
// ends: it executes all that is ready, then moves the clock to the next
// timer, and so on. It returns the run's result, or ErrStuck if the run
// waits for something that no timer will bring.
func Run[In, Out any](env *Env, wf *durable.Workflow[In, Out], runID string, in In) (Out, error) {
	var zero Out
	ctx := context.Background()
	run, err := wf.Start(ctx, env.Client, runID, in)
	if err != nil {
		return zero, err
	}
	if err := env.Settle(runID); err != nil {
		return zero, err
	}
	return run.Result(ctx)
}

// Settle drives the Env until the run has ended, moving the clock from
// timer to timer. It returns ErrStuck if the run waits for something no
// timer will bring.
func (e *Env) Settle(runID string) error {
	ctx := context.Background()
	for {
		if err := e.Worker.Drain(ctx); err != nil {
			return err
		}
		info, err := e.Client.Describe(ctx, runID)
		if err != nil {
			return err
		}
		if info.Status.Terminal() {
			return nil
		}
		if info.Status == backend.StatusParked {
			return fmt.Errorf("run %s parked: %w", runID, info.Failure)
		}
		next, ok := e.Clock.Next()
		if !ok {
			return fmt.Errorf("%w: run %s is %s, waiting for %s", ErrStuck, runID, info.Status, info.Waiting)
		}
		e.Clock.AdvanceTo(next)
	}
}

// History returns a run's history, or nil if it cannot be read.
func (e *Env) History(runID string) []backend.Event {
	h, err := e.Client.History(context.Background(), runID)
	if err != nil && e.t != nil {
		e.t.Errorf("history of %s: %v", runID, err)
	}
	return h
}

// testLogger sends the worker's logs to the test's log.
func testLogger(t testing.TB) *slog.Logger {
	if t == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

var _ io.Writer = testWriter{}
