package mcp_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
	"github.com/cairn-dev/cairn/tools/mcp"
)

var _ agent.Toolset = (*mcp.Client)(nil)

// fast retries failed attempts at once.
var fast = durable.RetryPolicy{InitialInterval: 5 * time.Millisecond}

func toolTurn(calls ...providers.ToolCall) providers.Response {
	return providers.Response{Message: providers.Message{ToolCalls: calls}}
}

func answer(text string) providers.Response {
	return providers.Response{Message: providers.Message{Content: text}}
}

func tc(name, args string) providers.ToolCall { return providers.ToolCall{Name: name, Arguments: args} }

// runAgent runs an agent with the given MCP clients on an in-memory
// store until its run ends. follow, if not nil, gets the run's live
// events as they come.
func runAgent(t *testing.T, a *agent.Agent, runID string, follow func(agent.LiveEvent)) (*agent.Runtime, agent.RunResult, []backend.Event) {
	t.Helper()
	rt, ctx := working(t, a)
	run, err := rt.Start(ctx, a, runID, agent.Input{Message: "go"})
	require.NoError(t, err)
	if follow != nil {
		go func() {
			_ = rt.Follow(ctx, runID, "", func(e agent.LiveEvent) error { follow(e); return nil })
		}()
	}
	res, err := run.Result(ctx)
	require.NoError(t, err)
	h, err := run.History(ctx)
	require.NoError(t, err)
	require.NoError(t, durable.ReplayHistory(rt.Workflow(a), h), "replay")
	return rt, res, h
}

// working returns a runtime of a on an in-memory store with a worker
// running until the test ends, and the context it runs in.
func working(t *testing.T, a *agent.Agent) (*agent.Runtime, context.Context) {
	t.Helper()
	rt := agent.NewRuntime(inmem.New(), agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, rt.Register(a))
	ctx, stop := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- rt.NewWorker(durable.WorkerOptions{}).Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	return rt, ctx
}

func toolMessages(res agent.RunResult) []string {
	var out []string
	for _, m := range res.Messages {
		if m.Role == providers.RoleTool {
			out = append(out, m.Content)
		}
	}
	return out
}

// TestAgentUsesMCPTools: an agent calls an in-process server's tools in
// parallel; each call is an activity with its own idempotency key in
// _meta; progress reaches the run's live feed; the list is recorded once.
func TestAgentUsesMCPTools(t *testing.T) {
	c, rec := inProcess(t, mcp.Options{Prefix: "srv_", Retry: fast})
	// count answers once its progress is in the live feed (progress
	// that trails a result is dropped).
	rec.seen = make(chan struct{})
	var once sync.Once
	follow := func(e agent.LiveEvent) {
		if e.Type == agent.LiveToolProgress {
			once.Do(func() { close(rec.seen) })
		}
	}
	model := scripted.New(
		toolTurn(tc("srv_echo", `{"message":"a"}`), tc("srv_count", `{"n":2}`), tc("srv_fail", `{}`), tc("srv_echo", `{"message":"b"}`)),
		toolTurn(tc("srv_echo", `{"message":7}`)),
		answer("done"))
	a := &agent.Agent{Name: "user", Model: model, Toolsets: []agent.Toolset{c}}
	rt, res, h := runAgent(t, a, "mcp-1", follow)
	assert.Equal(t, "done", res.Text)
	msgs := toolMessages(res)
	assert.Equal(t, []string{"echo: a", "2", "no such city", "echo: b"}, msgs[:4])
	assert.Contains(t, msgs[4], `invalid arguments for tool "srv_echo"`)

	keys, _ := rec.snapshot()
	require.Len(t, keys, 2)
	assert.NotEqual(t, keys[0], keys[1])
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, "mcp-1/"), k)
	}

	listings := 0
	for _, ev := range h {
		if ev.Type == backend.EventActivityCompleted && ev.Name == "toolset:user" {
			listings++
			assert.Contains(t, string(ev.Payload), `"hash":"`)
		}
	}
	assert.Equal(t, 1, listings)

	evs, err := rt.LiveEvents(ctxT(t), "mcp-1", "")
	require.NoError(t, err)
	var progress []float64
	for _, e := range evs {
		if e.Type == agent.LiveToolProgress {
			assert.Equal(t, "srv_count", e.Tool)
			progress = append(progress, e.Progress.Progress)
		}
	}
	assert.NotEmpty(t, progress, "progress in the live feed")
}

// TestAgentServerKilledMidCall: the server process dies during a call of
// a run; the attempt fails, the client reconnects to a new server process,
// and the call is made again with the same idempotency key; the run
// finishes.
func TestAgentServerKilledMidCall(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, err := mcp.NewClient("stdio", stdioServer(pidFile), mcp.Options{Retry: fast})
	require.NoError(t, err)
	defer c.Close()
	go func() {
		// Kill the server once the call of once is in it.
		for {
			if _, err := os.Stat(pidFile + ".mark"); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		b, _ := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}()
	model := scripted.New(toolTurn(tc("echo", `{"message":"x"}`), tc("once", `{}`)), answer("done"))
	a := &agent.Agent{Name: "user", Model: model, Toolsets: []agent.Toolset{c}}
	_, res, h := runAgent(t, a, "kill-1", nil)
	assert.Equal(t, "done", res.Text)
	assert.Equal(t, []string{"echo: x", "same key: true"}, toolMessages(res))
	failed := 0
	for _, ev := range h {
		if ev.Type == backend.EventActivityAttemptFailed && ev.Name == "tool:user/once" {
			failed++
			assert.Contains(t, ev.Failure.Message, "the connection dropped")
		}
	}
	assert.Equal(t, 1, failed, "one failed attempt, then the retry")
}

// TestAgentBadResults: a huge result is truncated before it is journaled;
// a server whose answers are malformed fails its attempts, and once they
// run out the model reads that the tool failed; the run goes on.
func TestAgentBadResults(t *testing.T) {
	c, _ := inProcess(t, mcp.Options{Retry: fast})
	bad, err := mcp.NewClient("bad", mcp.CommandFunc(func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envBadServer+"=content")
		return cmd
	}), mcp.Options{Prefix: "bad_", Retry: fast})
	require.NoError(t, err)
	defer bad.Close()
	model := scripted.New(toolTurn(tc("huge", `{}`), tc("bad_echo", `{}`)), answer("done"))
	a := &agent.Agent{Name: "user", Model: model, Toolsets: []agent.Toolset{c, bad}}
	_, res, h := runAgent(t, a, "bad-1", nil)
	assert.Equal(t, "done", res.Text)
	msgs := toolMessages(res)
	assert.Len(t, msgs[0], tools.DefaultMaxResultBytes+len("\n[truncated: the result was 4194304 bytes; only the first 65536 are shown]"))
	assert.Contains(t, msgs[1], "the tool bad_echo failed")
	assert.Contains(t, msgs[1], "the server's response could not be read")
	for _, ev := range h {
		assert.Less(t, len(ev.Payload), 70<<10, "event %s %s", ev.Type, ev.Name)
	}
}

// TestAgentToolRemovedMidRun: the server removes a tool during a run (and
// says so with notifications/tools/list_changed): the run keeps showing the
// model the list it recorded, and the model reads that the tool is gone;
// the next run is shown the new list.
func TestAgentToolRemovedMidRun(t *testing.T) {
	server := newTestServer(&calls{})
	c, err := mcp.NewClient("test", mcp.InProcess(server), mcp.Options{Retry: fast})
	require.NoError(t, err)
	defer c.Close()
	removed := false
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		var names []string
		for _, d := range req.Tools {
			names = append(names, d.Name)
		}
		switch scripted.Turn(req) {
		case 0:
			return toolTurn(tc("fail", `{}`)), nil
		case 1:
			if !removed {
				server.RemoveTools("echo")
				removed = true
				// Wait for the client to hear of it (not a require:
				// this is the worker's goroutine).
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					if set, err := c.Tools(context.Background()); err == nil {
						if _, ok := set.Lookup("echo"); !ok {
							break
						}
					}
				}
			}
			return toolTurn(tc("echo", `{"message":"x"}`)), nil
		}
		return answer(strings.Join(names, ",")), nil
	})
	a := &agent.Agent{Name: "user", Model: model, Toolsets: []agent.Toolset{c}}
	_, res, _ := runAgent(t, a, "removed-1", nil)
	assert.Contains(t, res.Text, "echo", "the recorded list")
	assert.Contains(t, toolMessages(res)[1], "the tool echo is no longer offered by test")
}
