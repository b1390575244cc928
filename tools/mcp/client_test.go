package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/cairn-dev/cairn/tools"
	"github.com/cairn-dev/cairn/tools/mcp"
)

func call(t *testing.T, ctx context.Context, set *tools.Set, name, args string) (tools.Result, error) {
	t.Helper()
	tool, ok := set.Lookup(name)
	require.True(t, ok, "tool %s in %v", name, set.Names())
	return tool.Call(ctx, json.RawMessage(args))
}

func TestToolsFilteredRenamed(t *testing.T) {
	c, _ := inProcess(t, mcp.Options{})
	set, err := c.Tools(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, "test", set.Name())
	assert.ElementsMatch(t, []string{"echo", "count", "hang", "fail", "huge", "media", "once"}, set.Names())
	echo, _ := set.Lookup("echo")
	assert.Equal(t, "Echo a message.", echo.Description())
	assert.Contains(t, string(echo.Schema()), `"message"`)
	assert.Equal(t, mcp.DefaultTimeout, echo.Timeout())
	assert.False(t, echo.RequiresApproval())

	c, _ = inProcess(t, mcp.Options{Allow: []string{"echo", "count", "fail"}, Deny: []string{"fail"}, Prefix: "t_",
		Rename: map[string]string{"count": "counter"}, RequireApproval: []string{"counter"}, Timeout: time.Second,
		HonorsIdempotencyKey: true})
	set, err = c.Tools(ctxT(t))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"t_echo", "counter"}, set.Names())
	counter, _ := set.Lookup("counter")
	assert.True(t, counter.RequiresApproval())
	assert.True(t, counter.HonorsIdempotencyKey())
	assert.Equal(t, time.Second, counter.Timeout())
	res, err := call(t, ctxT(t), set, "t_echo", `{"message":"hi"}`)
	require.NoError(t, err)
	assert.Equal(t, "echo: hi", res.Content, "the call goes to the server's name")
}

func TestCallSendsIdempotencyKeyAndValidates(t *testing.T) {
	c, rec := inProcess(t, mcp.Options{})
	set, err := c.Tools(ctxT(t))
	require.NoError(t, err)
	ctx := tools.WithIdempotencyKey(ctxT(t), "run-1/0/3/call_1")
	for range 2 {
		res, err := call(t, ctx, set, "echo", `{"message":"hi"}`)
		require.NoError(t, err)
		assert.Equal(t, tools.Result{Content: "echo: hi"}, res)
	}
	res, err := call(t, ctx, set, "echo", `{"message":7}`)
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, res.Content, `invalid arguments for tool "echo"`, "checked against the server's schema before sending")
	keys, _ := rec.snapshot()
	assert.Equal(t, []string{"run-1/0/3/call_1", "run-1/0/3/call_1"}, keys)
}

func TestCallResults(t *testing.T) {
	c, _ := inProcess(t, mcp.Options{MaxResultBytes: 1000})
	set, err := c.Tools(ctxT(t))
	require.NoError(t, err)
	ctx := ctxT(t)

	res, err := call(t, ctx, set, "fail", `{}`)
	require.NoError(t, err)
	assert.Equal(t, tools.Result{Content: "no such city", IsError: true}, res, "isError is the tool's error")

	res, err = call(t, ctx, set, "media", `{}`)
	require.NoError(t, err)
	assert.Equal(t, "here\n[image: image/png, 8 bytes]\n[resource link: file:///a.txt (a.txt, text/plain)]\n"+
		"[resource: file:///b.txt (text/plain)]\nbee\n{\"ok\":true}", res.Content)

	res, err = call(t, ctx, set, "huge", `{}`)
	require.NoError(t, err)
	assert.True(t, res.Truncated)
	assert.Less(t, len(res.Content), 1200)
	assert.Contains(t, res.Content, "[truncated: the result was 4194304 bytes; only the first 1000 are shown]")
}

func TestProgressReported(t *testing.T) {
	c, rec := inProcess(t, mcp.Options{})
	rec.seen = make(chan struct{})
	set, err := c.Tools(ctxT(t))
	require.NoError(t, err)
	var mu sync.Mutex
	var got []tools.Progress
	ctx := tools.WithProgress(ctxT(t), func(p tools.Progress) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, p)
		if len(got) == 3 {
			close(rec.seen)
		}
	})
	res, err := call(t, ctx, set, "count", `{"n":3}`)
	require.NoError(t, err)
	assert.Equal(t, "3", res.Content)
	mu.Lock()
	defer mu.Unlock()
	assert.ElementsMatch(t, []tools.Progress{{Progress: 1, Total: 3, Message: "step 1"}, {Progress: 2, Total: 3, Message: "step 2"},
		{Progress: 3, Total: 3, Message: "step 3"}}, got)
}

// TestTimeoutCancelsOnServer: a server that never answers: the call
// times out, a failed attempt, and the server is told it was canceled.
func TestTimeoutCancelsOnServer(t *testing.T) {
	c, rec := inProcess(t, mcp.Options{Timeout: 100 * time.Millisecond})
	set, err := c.Tools(ctxT(t))
	require.NoError(t, err)
	_, err = call(t, ctxT(t), set, "hang", `{}`)
	require.ErrorIs(t, err, tools.ErrTimeout)
	require.Eventually(t, func() bool { _, n := rec.snapshot(); return n == 1 }, 10*time.Second, time.Millisecond,
		"the server's handler was canceled")
	// The connection is still good.
	res, err := call(t, ctxT(t), set, "echo", `{"message":"after"}`)
	require.NoError(t, err)
	assert.Equal(t, "echo: after", res.Content)
}

// stdioServer is the test binary run again as a Go MCP server over
// stdio; each process it starts writes its pid to pidFile. Its tool once
// keeps its state in pidFile+".mark".
func stdioServer(pidFile string) mcp.Transport {
	return mcp.CommandFunc(func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envStdioServer+"="+pidFile, envMark+"="+pidFile+".mark")
		return cmd
	})
}

// serverPid waits for a server process other than not to have written
// its pid.
func serverPid(t *testing.T, pidFile string, not int) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid != not
	}, 10*time.Second, time.Millisecond)
	return pid
}

// TestServerKilledMidCall: the server process dies during a call; the
// attempt fails as retryable, and the next one starts a new server,
// initialises again and gets its answer.
func TestServerKilledMidCall(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, err := mcp.NewClient("stdio", stdioServer(pidFile), mcp.Options{})
	require.NoError(t, err)
	defer c.Close()
	set, err := c.Tools(ctxT(t))
	require.NoError(t, err)
	res, err := call(t, ctxT(t), set, "echo", `{"message":"one"}`)
	require.NoError(t, err)
	assert.Equal(t, "echo: one", res.Content)

	// Kill the server while hang runs: find it as the child whose
	// command is the test binary in server mode.
	done := make(chan error, 1)
	go func() {
		_, err := call(t, ctxT(t), set, "hang", `{}`)
		done <- err
	}()
	pid := serverPid(t, pidFile, 0)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	err = <-done
	require.Error(t, err)
	assert.False(t, errors.Is(err, tools.ErrTimeout), "%v", err)
	assert.Contains(t, err.Error(), "the connection dropped")

	set, err = c.Tools(ctxT(t))
	require.NoError(t, err, "reconnects and lists again")
	res, err = call(t, ctxT(t), set, "echo", `{"message":"two"}`)
	require.NoError(t, err)
	assert.Equal(t, "echo: two", res.Content)
	serverPid(t, pidFile, pid) // a new server process
}

// TestMalformedResponses: a server that answers a call with a line that is
// not JSON, or with content that does not decode: a failed attempt with a
// clear error (retried by the durable layer), and the client reconnects.
func TestMalformedResponses(t *testing.T) {
	for _, mode := range []string{"garbage", "content"} {
		t.Run(mode, func(t *testing.T) {
			c, err := mcp.NewClient("bad", mcp.CommandFunc(func() *exec.Cmd {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), envBadServer+"="+mode)
				return cmd
			}), mcp.Options{Timeout: 5 * time.Second})
			require.NoError(t, err)
			defer c.Close()
			set, err := c.Tools(ctxT(t))
			require.NoError(t, err)
			res, err := call(t, ctxT(t), set, "echo", `{}`)
			t.Logf("result %+v, error %v", res, err)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "mcp bad: call echo")
			assert.NotContains(t, err.Error(), "timed out")
			_, err = c.Tools(ctxT(t))
			require.NoError(t, err, "a new connection")
		})
	}
}

func TestNewClientChecks(t *testing.T) {
	_, err := mcp.NewClient("my server", mcp.Command("true"), mcp.Options{})
	assert.ErrorContains(t, err, "want only letters")
	_, err = mcp.NewClient("s", nil, mcp.Options{})
	assert.ErrorContains(t, err, "nil transport")
	_, err = mcp.NewClient("s", mcp.Command("true"), mcp.Options{Timeout: -1})
	assert.Error(t, err)

	// A server that cannot be reached: a clear error, no panic.
	c, err := mcp.NewClient("s", mcp.Command("/nonexistent/mcp-server"), mcp.Options{})
	require.NoError(t, err)
	_, err = c.Tools(ctxT(t))
	assert.ErrorContains(t, err, "mcp s: connect")
	require.NoError(t, c.Close())
	_, err = c.Tools(ctxT(t))
	assert.ErrorIs(t, err, mcp.ErrClosed)
}
