package cli_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/cmd/cairn/cli"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// notifyingBuffer is a buffer that says when it was written to.
type notifyingBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{}
}

func (n *notifyingBuffer) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	defer func() {
		select {
		case n.written <- struct{}{}:
		default:
		}
	}()
	return n.b.Write(p)
}

func (n *notifyingBuffer) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.String()
}

type bearer string

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

// mcp serve serves the program's agents; a client with the token runs one
// and reads its run by id, a client without it is turned away.
func TestMCPServe(t *testing.T) {
	w := newWorld(t)
	var out, errOut notifyingBuffer
	out.written = make(chan struct{}, 1)
	ctx, stop := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- w.app.Run(ctx, []string{"mcp", "serve", "--listen", "127.0.0.1:0", "--token", "s3cret", "--agent", "chat"}, &out, &errOut)
	}()
	serving := regexp.MustCompile(`^Serving chat as MCP tools at (http://127\.0\.0\.1:\d+/mcp)\n$`)
	var url string
	for url == "" {
		select {
		case <-out.written:
			if m := serving.FindStringSubmatch(out.String()); m != nil {
				url = m[1]
			}
		case c := <-code:
			t.Fatalf("mcp serve exited with %d: %s%s", c, out.String(), errOut.String())
		}
	}

	client := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	_, err := client.Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: url, MaxRetries: -1}, nil)
	assert.Error(t, err, "no token, no session")

	session, err := client.Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: url,
		HTTPClient: &http.Client{Transport: bearer("s3cret")}}, nil)
	require.NoError(t, err)
	var names []string
	for tool, err := range session.Tools(t.Context(), nil) {
		require.NoError(t, err)
		names = append(names, tool.Name)
	}
	assert.ElementsMatch(t, []string{"chat", mcp.RunResultTool}, names)
	res, err := session.CallTool(t.Context(), &sdk.CallToolParams{Name: "chat", Arguments: map[string]any{"message": "hello", "run_id": "mcp-1"}})
	require.NoError(t, err)
	require.False(t, res.IsError)
	assert.Equal(t, "You said: hello", res.Content[0].(*sdk.TextContent).Text)
	res, err = session.CallTool(t.Context(), &sdk.CallToolParams{Name: mcp.RunResultTool, Arguments: map[string]any{"run_id": "mcp-1"}})
	require.NoError(t, err)
	assert.Equal(t, "You said: hello", res.Content[0].(*sdk.TextContent).Text)
	require.NoError(t, session.Close())

	stop()
	assert.Equal(t, cli.ExitOK, <-code, errOut.String())
}

func TestMCPServeUsage(t *testing.T) {
	w := newWorld(t)
	r := w.cairn("mcp", "serve", "--agent", "nope")
	assert.Equal(t, cli.ExitUsage, r.code)
	assert.Contains(t, r.err, "--agent nope: no such agent (the program has support, chat)")

	r = w.cairn("mcp", "serve", "--listen", "0.0.0.0:0")
	assert.Equal(t, cli.ExitUsage, r.code)
	assert.Contains(t, r.err, "--listen 0.0.0.0:0 is not a loopback address: give --token or set CAIRN_MCP_TOKEN")

	bare := w.app
	bare.Agents = nil
	r = runApp(t, bare, "mcp", "serve")
	assert.Equal(t, cli.ExitUsage, r.code)
	assert.Contains(t, r.err, "no agents to serve")
}
