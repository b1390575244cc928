package agent_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// env is a runtime on an in-memory store with a worker that can be
// stopped and started again (a deploy, or a crash as far as the store can
// tell).
type env struct {
	t     *testing.T
	store backend.Store
	rt    *agent.Runtime
	stop  func()
}

func newEnv(t *testing.T, agents ...*agent.Agent) *env {
	t.Helper()
	return newEnvOn(t, inmem.New(), agent.Options{}, agents...)
}

func newEnvOn(t *testing.T, store backend.Store, opts agent.Options, agents ...*agent.Agent) *env {
	t.Helper()
	opts.Logger = quietLogger()
	e := &env{t: t, store: store, rt: agent.NewRuntime(store, opts)}
	require.NoError(t, e.rt.Register(agents...))
	e.start()
	t.Cleanup(func() { e.halt() })
	return e
}

// start starts a worker.
func (e *env) start() {
	e.halt()
	w := e.rt.NewWorker(durable.WorkerOptions{LeaseTTL: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.NoError(e.t, w.Run(ctx), "worker")
	}()
	e.stop = func() { cancel(); <-done }
}

// halt stops the worker, if one runs.
func (e *env) halt() {
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// waitStatus waits for a run to reach a status.
func (e *env) waitStatus(runID string, want backend.Status) backend.RunInfo {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := e.rt.Run(runID).Describe(context.Background())
		if err == nil && info.Status == want {
			return info
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s: status %s, want %s (%v)", runID, info.Status, want, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
