package mcp_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/syncbuf"
	"github.com/cairn-dev/cairn/tools"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// The reference server, @modelcontextprotocol/server-everything from npm,
// is installed by .ci/run into everythingDir (or the directory named by
// CAIRN_MCP_EVERYTHING_DIR) with
//
//	npm install --prefix DIR @modelcontextprotocol/server-everything@2026.8.31
const everythingVersion = "2026.8.31"

// everything returns the path of the reference server's entry point, or
// skips the test saying how to install it.
func everything(t *testing.T) (node, script string) {
	t.Helper()
	dir := os.Getenv("CAIRN_MCP_EVERYTHING_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Skipf("no cache directory to find the reference MCP server in: %v", err)
		}
		dir = filepath.Join(cache, "cairn", "server-everything")
	}
	script = filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed, so the reference MCP server cannot run (bash .ci/run installs it)")
	}
	if _, err := os.Stat(script); err != nil {
		t.Skipf("the reference MCP server is not installed in %s; bash .ci/run installs it, or: npm install --prefix %s @modelcontextprotocol/server-everything@%s",
			dir, dir, everythingVersion)
	}
	return node, script
}

// checkEverything calls the reference server's tools through c.
func checkEverything(t *testing.T, c *mcp.Client) {
	ctx := ctxT(t)
	set, err := c.Tools(ctx)
	require.NoError(t, err)
	names := set.Names()
	for _, n := range []string{"echo", "get-sum", "get-tiny-image", "get-structured-content", "trigger-long-running-operation", "get-resource-links"} {
		assert.Contains(t, names, n)
	}

	res, err := call(t, ctx, set, "echo", `{"message":"hello"}`)
	require.NoError(t, err)
	assert.Equal(t, tools.Result{Content: "Echo: hello"}, res)

	res, err = call(t, ctx, set, "get-sum", `{"a":2,"b":40}`)
	require.NoError(t, err)
	assert.Equal(t, "The sum of 2 and 40 is 42.", res.Content)

	res, err = call(t, ctx, set, "get-sum", `{"a":"two","b":40}`)
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, res.Content, `invalid arguments for tool "get-sum"`, "the server's schema, checked here")

	res, err = call(t, ctx, set, "get-tiny-image", `{}`)
	require.NoError(t, err)
	assert.Regexp(t, `^Here's the image you requested:\n\[image: image/png, \d+ bytes\]\nThe image above is the MCP logo\.$`, res.Content)

	res, err = call(t, ctx, set, "get-structured-content", `{"location":"Chicago"}`)
	require.NoError(t, err)
	assert.Contains(t, res.Content, `"temperature"`)
	assert.Equal(t, 1, strings.Count(res.Content, `"temperature"`), "structured content the text already holds is not repeated: %s", res.Content)

	res, err = call(t, ctx, set, "get-resource-links", `{"count":2}`)
	require.NoError(t, err)
	assert.Contains(t, res.Content, "[resource link: demo://resource/")

	var mu sync.Mutex
	var progress []tools.Progress
	pctx := tools.WithProgress(ctx, func(p tools.Progress) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, p)
	})
	res, err = call(t, pctx, set, "trigger-long-running-operation", `{"duration":0.3,"steps":3}`)
	require.NoError(t, err)
	assert.Contains(t, res.Content, "Long running operation completed")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, progress, "progress notifications")
	assert.Equal(t, float64(3), progress[0].Total)
}

func TestEverythingStdio(t *testing.T) {
	t.Parallel()
	node, script := everything(t)
	var stderr syncbuf.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the server's standard error:\n%s", stderr.String())
		}
	})
	c, err := mcp.NewClient("everything", mcp.CommandFunc(func() *exec.Cmd {
		cmd := exec.Command(node, script, "stdio")
		cmd.Stderr = &stderr
		return cmd
	}), mcp.Options{})
	require.NoError(t, err)
	defer c.Close()
	checkEverything(t, c)
}

func TestEverythingStreamableHTTP(t *testing.T) {
	t.Parallel()
	node, script := everything(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	cmd := exec.Command(node, script, "streamableHttp")
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on port") {
				once.Do(func() { close(listening) })
			}
		}
	}()
	select {
	case <-listening:
	case <-time.After(30 * time.Second):
		t.Fatal("the reference server did not start listening")
	}
	var mu sync.Mutex
	var auth []string
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := mcp.NewClient("everything", mcp.StreamableHTTP(fmt.Sprintf("http://127.0.0.1:%d/mcp", port),
		http.Header{"Authorization": {"Bearer s3cret"}}, client), mcp.Options{})
	require.NoError(t, err)
	defer c.Close()
	checkEverything(t, c)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, auth)
	for _, a := range auth {
		assert.Equal(t, "Bearer s3cret", a, "every request carries the header")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
