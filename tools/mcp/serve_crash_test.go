package mcp_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/childproc"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// The worker child of TestServeCrash: this test binary run again.
const (
	serveChildEnv = "CAIRN_MCPSERVE_CHILD_URL" // the Redis URL; set in a child only
	serveStopEnv  = "CAIRN_MCPSERVE_STOP"      // set: stop in charge, after its effect
	serveLease    = time.Second
	// Where the clerk counts, outside the worker processes, its model
	// calls by turn, its charge's executions and its charges (once per
	// idempotency key).
	serveModelKey   = "mcpserve:model"
	serveRunsKey    = "mcpserve:charge:runs"
	serveEffectsKey = "mcpserve:charge:effects"
)

// serveClerk charges 42 (a tool that honours its idempotency key), then
// answers with the charge's result. stop, if set, is called inside the
// charge, after its effect.
func serveClerk(rdb goredis.UniversalClient, stop func()) *agent.Agent {
	charge := tools.MustNew("charge", "Charge the customer.", func(ctx context.Context, in struct {
		Amount int `json:"amount"`
	}) (string, error) {
		key, _ := tools.IdempotencyKey(ctx)
		if err := rdb.Incr(ctx, serveRunsKey).Err(); err != nil {
			return "", err
		}
		first, err := rdb.SetNX(ctx, "mcpserve:charged:"+key, 1, 0).Result()
		if err != nil {
			return "", err
		}
		if first {
			if err := rdb.Incr(ctx, serveEffectsKey).Err(); err != nil {
				return "", err
			}
		}
		if stop != nil {
			stop()
		}
		return fmt.Sprintf("charged %d (key %s)", in.Amount, key), nil
	}, tools.HonorsIdempotencyKey(), tools.Retry(durable.RetryPolicy{InitialInterval: 10 * time.Millisecond}))
	set, err := tools.NewSet(charge)
	if err != nil {
		panic(err)
	}
	return &agent.Agent{Name: "clerk", Description: "Charges orders.", Tools: set, Model: scripted.Func(
		func(ctx context.Context, req providers.Request) (providers.Response, error) {
			turn := scripted.Turn(req)
			if err := rdb.HIncrBy(ctx, serveModelKey, strconv.Itoa(turn), 1).Err(); err != nil {
				return providers.Response{}, err
			}
			if turn == 0 {
				return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
					{Name: "charge", Arguments: `{"amount":42}`}}}}, nil
			}
			return providers.Response{Message: providers.Message{Content: "done: " + req.Messages[len(req.Messages)-1].Content}}, nil
		}),
		ModelOptions: durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{InitialInterval: 10 * time.Millisecond}}}
}

// TestServeCrashChild is the worker process of TestServeCrash, which
// runs this test binary again with serveChildEnv set; alone it skips.
func TestServeCrashChild(t *testing.T) {
	url := os.Getenv(serveChildEnv)
	if url == "" {
		t.Skip("the worker process of TestServeCrash")
	}
	store, err := redis.Open(url, redis.WithVisibilityTimeout(serveLease))
	require.NoError(t, err)
	opts, err := goredis.ParseURL(url)
	require.NoError(t, err)
	var stop func()
	if os.Getenv(serveStopEnv) != "" {
		stop = func() {
			fmt.Println("STOPPED")
			// Freeze the whole process until the parent's SIGKILL.
			_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
			select {}
		}
	}
	rt := agent.NewRuntime(store, agent.Options{})
	require.NoError(t, rt.Register(serveClerk(goredis.NewClient(opts), stop)))
	w := rt.NewWorker(durable.WorkerOptions{LeaseTTL: serveLease})
	fmt.Println("READY")
	require.NoError(t, w.Run(context.Background()))
}

// startServeChild starts a worker process of the served agents on the
// Redis server at url, and waits until it runs.
func startServeChild(t *testing.T, url string, env ...string) *childproc.Process {
	t.Helper()
	return childproc.Start(t, "worker", "^TestServeCrashChild$", "READY", append([]string{serveChildEnv + "=" + url}, env...)...)
}

// An MCP client starts an agent run; the worker process running it is
// killed with SIGKILL inside a tool, after its side effect; another
// worker finishes the run, and the client reads its result by id. A call
// that was waiting across the kill gets the answer too. The tool's side
// effect happened once, the model was not called again for the turn it
// had answered.
func TestServeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a worker process and waits out its lease")
	}
	server := redistest.Start(t)
	rdb := server.Client()
	store, err := redis.Open(server.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	// This process serves MCP and runs no worker.
	rt := agent.NewRuntime(store, agent.Options{})
	srv, err := mcp.NewAgentServer(rt, mcp.ServeOptions{Agents: []*agent.Agent{serveClerk(rdb, nil)}})
	require.NoError(t, err)
	web := httptest.NewServer(srv)
	t.Cleanup(web.Close)
	progress := make(chan string, 100)
	client := sdk.NewClient(&sdk.Implementation{Name: "ide", Version: "1"}, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			progress <- req.Params.Message
		}})
	session, err := client.Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: web.URL}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = session.Close() })
	call := func(ctx context.Context, tool string, args map[string]any, meta sdk.Meta) *sdk.CallToolResult {
		res, err := session.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args, Meta: meta})
		require.NoError(t, err)
		return res
	}

	first := startServeChild(t, server.URL(), serveStopEnv+"=1")
	res := call(t.Context(), "clerk", map[string]any{"message": "Charge order o-1.", "run_id": "order-1", "wait_seconds": 0}, nil)
	require.False(t, res.IsError, serveTextOf(res))
	assert.NotEqual(t, "completed", serveRunOf(t, res).Status)
	first.WaitFor("STOPPED")

	// A call that waits for the run across the crash.
	waiting := make(chan *sdk.CallToolResult, 1)
	go func() {
		r, err := session.CallTool(t.Context(), &sdk.CallToolParams{Name: mcp.RunResultTool,
			Arguments: map[string]any{"run_id": "order-1", "wait_seconds": 120}, Meta: sdk.Meta{"progressToken": 1}})
		if err != nil {
			r = &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: err.Error()}}}
		}
		waiting <- r
	}()
	first.Kill()
	startServeChild(t, server.URL())

	res = call(t.Context(), mcp.RunResultTool, map[string]any{"run_id": "order-1", "wait_seconds": 120}, nil)
	require.False(t, res.IsError, serveTextOf(res))
	assert.Equal(t, `done: "charged 42 (key order-1/0/2/call_0_0)"`, serveTextOf(res))
	assert.Equal(t, mcp.ServedRun{RunID: "order-1", Agent: "clerk", Status: "completed"}, serveRunOf(t, res))
	across := <-waiting
	assert.False(t, across.IsError, serveTextOf(across))
	assert.Equal(t, serveTextOf(res), serveTextOf(across))

	// A retried start attaches to the finished run.
	again := call(t.Context(), "clerk", map[string]any{"message": "Charge order o-1.", "run_id": "order-1"}, nil)
	assert.Equal(t, serveTextOf(res), serveTextOf(again))

	ctx := t.Context()
	assert.Equal(t, "2", rdb.Get(ctx, serveRunsKey).Val(), "the charge ran again after the kill")
	assert.Equal(t, "1", rdb.Get(ctx, serveEffectsKey).Val(), "with the same key: one charge")
	assert.Equal(t, map[string]string{"0": "1", "1": "1"}, rdb.HGetAll(ctx, serveModelKey).Val(), "each model turn once")
	// The waiting call had the run's progress (which the client hands
	// to its handler apart from the result).
	for msg := range progress {
		if msg == `calling charge {"amount":42}` {
			break
		}
	}
}
