package cli_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/cli"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// world is a private redis-server with a worker running the test agents,
// and the tool pointed at it.
type world struct {
	t     *testing.T
	srv   *redistest.Server
	store *redis.Store
	rt    *agent.Runtime
	app   cli.App
	stop  func()
}

// The test agents: support refunds orders, refunds above 50 euros wait for
// approval; chat answers each message in a conversation.
func supportAgent() *agent.Agent {
	type lookupArgs struct {
		OrderID string `json:"order_id"`
	}
	type refundArgs struct {
		OrderID string `json:"order_id"`
		Amount  int    `json:"amount"`
	}
	set := must(tools.NewSet(
		tools.MustNew("lookup_order", "Find an order.", func(ctx context.Context, in lookupArgs) (string, error) {
			return "order " + in.OrderID + ": 2 pizzas, 120 euros, delivered cold", nil
		}),
		tools.MustNew("refund", "Refund an order.", func(ctx context.Context, in refundArgs) (string, error) {
			return fmt.Sprintf("refunded %d euros on %s", in.Amount, in.OrderID), nil
		}, tools.RequireApprovalIf(func(in refundArgs) bool { return in.Amount > 50 })),
	))
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		switch scripted.Turn(req) {
		case 0:
			return calls(providers.ToolCall{Name: "lookup_order", Arguments: `{"order_id":"A-1001"}`}), nil
		case 1:
			return calls(providers.ToolCall{Name: "refund", Arguments: `{"order_id":"A-1001","amount":120}`}), nil
		}
		last := req.Messages[len(req.Messages)-1].Content
		return providers.Response{Message: providers.Message{Content: "Done: " + last}}, nil
	})
	return &agent.Agent{Name: "support", Instructions: "Refund cold orders.", Model: model, Tools: set}
}

func chatAgent() *agent.Agent {
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		last := req.Messages[len(req.Messages)-1].Content
		return providers.Response{Message: providers.Message{Content: "You said: " + last}}, nil
	})
	return &agent.Agent{Name: "chat", Model: model}
}

func calls(cs ...providers.ToolCall) providers.Response {
	return providers.Response{Message: providers.Message{ToolCalls: cs}}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// newWorld starts a redis-server and a worker running agents (default:
// support and chat).
func newWorld(t *testing.T, agents ...*agent.Agent) *world {
	t.Helper()
	return newWorldWith(t, agent.Options{}, agents...)
}

// newWorldWith is newWorld with the workers' runtime options (Logger and
// Clock are the world's).
func newWorldWith(t *testing.T, opts agent.Options, agents ...*agent.Agent) *world {
	t.Helper()
	srv := redistest.Start(t)
	w := newWorldAt(t, srv.URL(), map[string]string{cli.EnvRedisURL: srv.URL()}, opts, nil, agents...)
	w.srv = srv
	return w
}

// newWorldAt starts a worker running agents (default: support and chat)
// on the store at url, opened with storeOpts, and points the tool at it
// through the environment env.
func newWorldAt(t *testing.T, url string, env map[string]string, opts agent.Options, storeOpts []redis.Option,
	agents ...*agent.Agent) *world {
	t.Helper()
	if len(agents) == 0 {
		agents = []*agent.Agent{supportAgent(), chatAgent()}
	}
	w := &world{t: t}
	quiet := slog.New(slog.DiscardHandler)
	// The clock stands still, so that times in the output are the same
	// in every run of the tests: nothing here waits for time to pass.
	clock := durabletest.NewClock(durabletest.Start())
	store, err := redis.Open(url, append([]redis.Option{redis.WithLogger(quiet), redis.WithClock(clock)}, storeOpts...)...)
	require.NoError(t, err)
	w.store = store
	t.Cleanup(func() { store.Close() })
	opts.Logger, opts.Clock = quiet, clock
	w.rt = agent.NewRuntime(store, opts)
	require.NoError(t, w.rt.Register(agents...))
	w.app = cli.App{Agents: agents, Getenv: func(key string) string { return env[key] }}
	w.startWorker()
	return w
}

// startWorker starts a worker (after stopping the one running, if any).
func (w *world) startWorker() {
	w.stopWorker()
	wk := w.rt.NewWorker(durable.WorkerOptions{LeaseTTL: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = wk.Run(ctx) }()
	w.stop = func() { cancel(); <-done }
	w.t.Cleanup(w.stopWorker)
}

func (w *world) stopWorker() {
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
}

// traced is a context whose span makes a run's trace id fixed, for golden
// output.
func traced() context.Context {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xca, 0x19}, SpanID: trace.SpanID{1},
		TraceFlags: trace.FlagsSampled})
	return trace.ContextWithSpanContext(context.Background(), sc)
}

// start starts a run of a and waits until it has the status.
func (w *world) start(a *agent.Agent, runID string, in agent.Input, want backend.Status) {
	w.t.Helper()
	_, err := w.rt.Start(traced(), a, runID, in)
	require.NoError(w.t, err)
	w.waitStatus(runID, want)
}

func (w *world) waitStatus(runID string, want backend.Status) backend.RunInfo {
	w.t.Helper()
	var info backend.RunInfo
	require.EventuallyWithT(w.t, func(c *assert.CollectT) {
		var err error
		info, err = w.rt.Run(runID).Describe(context.Background())
		require.NoError(c, err)
		assert.Equal(c, want, info.Status)
	}, 10*time.Second, 2*time.Millisecond, "run %s: status", runID)
	return info
}

// result is what one command line gave.
type result struct {
	out, err string
	code     int
}

// cairn runs the tool with args.
func (w *world) cairn(args ...string) result {
	w.t.Helper()
	return runApp(w.t, w.app, args...)
}

func runApp(t *testing.T, app cli.App, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := app.Run(ctx, args, &out, &errOut)
	return result{out: out.String(), err: errOut.String(), code: code}
}

// The parts of the output that change from run to run: random seeds, the
// server's port, and the times the tool itself writes.
var (
	seeds     = regexp.MustCompile(`"seed": ?\d+`)
	redisAddr = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

func stable(s string) string {
	s = seeds.ReplaceAllString(s, `"seed": 0`)
	return redisAddr.ReplaceAllString(s, "127.0.0.1:PORT")
}

// golden compares got with testdata/name.golden, or rewrites the file
// with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run the test with -update to write it")
	assert.Equal(t, string(want), got, "output differs from %s (run with -update if the change is intended)", path)
}

// check runs a command line, checks its exit status, and compares its
// output (stdout, then stderr if any) with a golden file.
func (w *world) check(name string, wantCode int, args ...string) result {
	w.t.Helper()
	r := w.cairn(args...)
	assert.Equal(w.t, wantCode, r.code, "cairn %s: exit status\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.out, r.err)
	got := "$ cairn " + strings.Join(args, " ") + "\n" + stable(r.out)
	if r.err != "" {
		got += "--- stderr\n" + stable(r.err)
	}
	golden(w.t, name, got)
	return r
}
