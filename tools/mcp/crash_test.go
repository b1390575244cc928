package mcp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/childproc"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// The crash test: a worker process (this test binary run again, see
// crashWorker) runs an agent whose tools are an MCP server's, on a Redis
// store; it is killed with SIGKILL while the server runs its call of
// charge; a second worker process takes the run over, makes the call
// again with the same idempotency key, and finishes the run. The server
// runs in the test process, over streamable HTTP, and counts what it did.

// Environment of a crash worker.
const (
	envRedisURL = "CAIRN_MCP_TEST_REDIS_URL"
	envMCPURL   = "CAIRN_MCP_TEST_MCP_URL"
	// envAgent chooses the agent of the crash worker: shop (the
	// default) or desk:VERSION, the desk asking for that protocol
	// version (crash_input_test.go).
	envAgent = "CAIRN_MCP_TEST_AGENT"
)

const crashRun = "crash-1"

// shopAgent is the agent of the crash test: it looks an order up, charges
// it, and answers.
func shopAgent(mcpURL string) (*agent.Agent, *mcp.Client, error) {
	c, err := mcp.NewClient("shop", mcp.StreamableHTTP(mcpURL, nil, nil),
		mcp.Options{HonorsIdempotencyKey: true, Retry: durable.RetryPolicy{InitialInterval: 10 * time.Millisecond}})
	if err != nil {
		return nil, nil, err
	}
	model := scripted.New(
		toolTurn(tc("lookup", `{"order":"A-1"}`)),
		toolTurn(tc("charge", `{"order":"A-1","cents":1200}`)),
		answer("charged A-1"))
	return &agent.Agent{Name: "shop", Model: model, Toolsets: []agent.Toolset{c}}, c, nil
}

// crashWorker is the child: a worker of the shop agent until it is killed.
func crashWorker() error {
	store, err := redis.Open(os.Getenv(envRedisURL))
	if err != nil {
		return err
	}
	defer store.Close()
	agentOf := shopAgent
	if name, version, ok := strings.Cut(os.Getenv(envAgent), ":"); ok && name == "desk" {
		agentOf = deskAgent(version)
	}
	a, c, err := agentOf(os.Getenv(envMCPURL))
	if err != nil {
		return err
	}
	defer c.Close()
	rt := agent.NewRuntime(store, agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := rt.Register(a); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	w := rt.NewWorker(durable.WorkerOptions{LeaseTTL: time.Second})
	fmt.Println("READY")
	if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// shop is the MCP server of the crash test: it counts lookups and
// charges, and charges once per idempotency key.
type shop struct {
	mu      sync.Mutex
	lookups int
	keys    []string       // the key of every call of charge
	charged map[string]int // charges made, by key
	block   chan struct{}  // the first charge waits on it
	started chan struct{}  // closed when the first charge arrives
}

func (s *shop) server() *sdk.Server {
	srv := sdk.NewServer(&sdk.Implementation{Name: "shop", Version: "1"}, nil)
	sdk.AddTool(srv, &sdk.Tool{Name: "lookup", Description: "Look an order up."},
		func(ctx context.Context, req *sdk.CallToolRequest, in struct {
			Order string `json:"order"`
		}) (*sdk.CallToolResult, any, error) {
			s.mu.Lock()
			s.lookups++
			s.mu.Unlock()
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: in.Order + ": 12 euros"}}}, nil, nil
		})
	sdk.AddTool(srv, &sdk.Tool{Name: "charge", Description: "Charge an order."},
		func(ctx context.Context, req *sdk.CallToolRequest, in struct {
			Order string `json:"order"`
			Cents int    `json:"cents"`
		}) (*sdk.CallToolResult, any, error) {
			key, _ := req.Params.Meta[mcp.MetaIdempotencyKey].(string)
			s.mu.Lock()
			s.keys = append(s.keys, key)
			first := len(s.keys) == 1
			s.mu.Unlock()
			if first {
				close(s.started)
				<-s.block // the worker that called is killed meanwhile
				return nil, nil, errors.New("the caller is gone")
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.charged[key] == 0 {
				s.charged[key]++
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("charged %s %d cents", in.Order, in.Cents)}}}, nil, nil
		})
	return srv
}

func TestCrashWorkerKilledDuringMCPCall(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a worker process and waits out its lease; run without -short")
	}
	s := &shop{charged: map[string]int{}, block: make(chan struct{}), started: make(chan struct{})}
	defer close(s.block)
	cr := newCrashRun(t, s.server(), shopAgent, crashRun, "charge A-1")
	rt, a, run := cr.rt, cr.agent, cr.run

	first := cr.startWorker(t, "shop")
	select {
	case <-s.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the first worker never called charge")
	}
	first.Kill()

	cr.startWorker(t, "shop")
	res, err := run.Result(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, "charged A-1", res.Text)

	s.mu.Lock()
	defer s.mu.Unlock()
	assert.Equal(t, 1, s.lookups, "a completed call is not made again")
	require.Len(t, s.keys, 2, "the cut-off call is made again")
	assert.Equal(t, s.keys[0], s.keys[1], "with the same key")
	assert.Equal(t, map[string]int{s.keys[0]: 1}, s.charged)

	h, err := run.History(ctxT(t))
	require.NoError(t, err)
	lost := 0
	for _, ev := range h {
		if ev.Type == backend.EventActivityAttemptFailed && ev.Name == "tool:shop/charge" {
			lost++
		}
	}
	assert.Equal(t, 1, lost, "the attempt lost with the worker is in history")
	assert.NoError(t, durable.ReplayHistory(rt.Workflow(a), h))
}

// crashWorld is a crash test's world: its MCP server over streamable HTTP,
// a Redis server, and a run started (not yet run) of the agent agentOf
// makes, with a runtime of its own to read the run.
type crashWorld struct {
	redisURL, mcpURL string
	rt               *agent.Runtime
	agent            *agent.Agent
	run              *durable.Run[agent.RunResult]
}

func newCrashRun(t *testing.T, server *sdk.Server, agentOf func(string) (*agent.Agent, *mcp.Client, error), runID, message string) *crashWorld {
	t.Helper()
	hs := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return server }, nil))
	t.Cleanup(hs.Close)
	srv := redistest.Start(t)
	store, err := redis.Open(srv.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	a, c, err := agentOf(hs.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	rt := agent.NewRuntime(store, agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, rt.Register(a))
	run, err := rt.Start(ctxT(t), a, runID, agent.Input{Message: message})
	require.NoError(t, err)
	return &crashWorld{redisURL: srv.URL(), mcpURL: hs.URL, rt: rt, agent: a, run: run}
}

// startWorker starts a crash worker process of the agent agentName and
// waits until it runs.
func (w *crashWorld) startWorker(t *testing.T, agentName string) *childproc.Process {
	t.Helper()
	return childproc.Start(t, "worker "+agentName, "^$", "READY",
		envWorker+"=1", envRedisURL+"="+w.redisURL, envMCPURL+"="+w.mcpURL, envAgent+"="+agentName)
}
