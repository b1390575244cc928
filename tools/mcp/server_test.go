package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/tools/mcp"
)

// Environment variables that make the test binary something other than
// the tests, when a test runs it again as a child process.
const (
	envStdioServer = "CAIRN_MCP_TEST_STDIO_SERVER" // a Go MCP server over stdio; the value is a file for its pid
	envBadServer   = "CAIRN_MCP_TEST_BAD_SERVER"   // a server whose tools/call answers are malformed
	envWorker      = "CAIRN_MCP_TEST_WORKER"       // a worker of the crash test (crash_test.go)
	envMark        = "CAIRN_MCP_TEST_MARK"         // the stdio server's file for the tool once
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(envStdioServer) != "":
		_ = os.WriteFile(os.Getenv(envStdioServer), []byte(strconv.Itoa(os.Getpid())), 0o600)
		srv := newTestServer(&calls{mark: os.Getenv(envMark)})
		if err := srv.Run(context.Background(), &sdk.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, "stdio server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case os.Getenv(envBadServer) != "":
		badServer(os.Getenv(envBadServer))
		os.Exit(0)
	case os.Getenv(envWorker) != "":
		if err := crashWorker(); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// calls records what the test server was asked.
type calls struct {
	mu       sync.Mutex
	keys     []string // the idempotency keys of the calls of echo
	canceled int      // calls of hang whose context ended
	started  chan string
	// seen, if set, is closed by the test once it has seen count's
	// progress: count waits for it before it answers (progress that
	// trails a result is dropped).
	seen chan struct{}
	// mark is the file of the tool once.
	mark string
}

func (c *calls) addKey(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, k)
}

func (c *calls) snapshot() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.keys...), c.canceled
}

type echoArgs struct {
	Message string `json:"message" jsonschema:"the message to echo"`
}

// newTestServer is a go-sdk server with the tools the tests call.
func newTestServer(rec *calls) *sdk.Server {
	srv := sdk.NewServer(&sdk.Implementation{Name: "test", Version: "1"}, nil)
	sdk.AddTool(srv, &sdk.Tool{Name: "echo", Description: "Echo a message."},
		func(ctx context.Context, req *sdk.CallToolRequest, in echoArgs) (*sdk.CallToolResult, any, error) {
			key, _ := req.Params.Meta[mcp.MetaIdempotencyKey].(string)
			rec.addKey(key)
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "echo: " + in.Message}}}, nil, nil
		})
	sdk.AddTool(srv, &sdk.Tool{Name: "count", Description: "Count to n, reporting progress."},
		func(ctx context.Context, req *sdk.CallToolRequest, in struct {
			N int `json:"n"`
		}) (*sdk.CallToolResult, any, error) {
			for i := 1; i <= in.N; i++ {
				_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(),
					Progress: float64(i), Total: float64(in.N), Message: fmt.Sprintf("step %d", i)})
			}
			if rec.seen != nil {
				select {
				case <-rec.seen:
				case <-ctx.Done():
				}
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprint(in.N)}}}, nil, nil
		})
	sdk.AddTool(srv, &sdk.Tool{Name: "hang", Description: "Never answer."},
		func(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
			if rec.started != nil {
				rec.started <- "hang"
			}
			<-ctx.Done()
			rec.mu.Lock()
			rec.canceled++
			rec.mu.Unlock()
			return nil, nil, ctx.Err()
		})
	sdk.AddTool(srv, &sdk.Tool{Name: "fail", Description: "Fail as a tool does."},
		func(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "no such city"}}}, nil, nil
		})
	sdk.AddTool(srv, &sdk.Tool{Name: "huge", Description: "Return 4 MB of text."},
		func(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: strings.Repeat("x", 4<<20)}}}, nil, nil
		})
	sdk.AddTool(srv, &sdk.Tool{Name: "media", Description: "Return one of each kind of content."},
		func(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{
				&sdk.TextContent{Text: "here"},
				&sdk.ImageContent{MIMEType: "image/png", Data: []byte("\x89PNG....")},
				&sdk.ResourceLink{URI: "file:///a.txt", Name: "a.txt", MIMEType: "text/plain"},
				&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "file:///b.txt", MIMEType: "text/plain", Text: "bee"}},
			}, StructuredContent: map[string]any{"ok": true}}, nil, nil
		})
	sdk.AddTool(srv, &sdk.Tool{Name: "once", Description: "Hang the first time, answer the next."},
		func(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
			key, _ := req.Params.Meta[mcp.MetaIdempotencyKey].(string)
			first, err := os.ReadFile(rec.mark)
			if err != nil {
				// The first call: say so with the key, and hang.
				_ = os.WriteFile(rec.mark+".tmp", []byte(key), 0o600)
				_ = os.Rename(rec.mark+".tmp", rec.mark)
				<-ctx.Done()
				return nil, nil, ctx.Err()
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("same key: %v", string(first) == key)}}}, nil, nil
		})
	return srv
}

// badServer speaks enough JSON-RPC over stdio to initialise and list a
// tool, then answers tools/call as mode says: "garbage" (a line that is
// not JSON), "content" (a result whose content does not decode).
func badServer(mode string) {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				ProtocolVersion string `json:"protocolVersion"`
			} `json:"params"`
		}
		if json.Unmarshal(in.Bytes(), &req) != nil || req.ID == nil {
			continue
		}
		reply := func(result any) {
			_ = out.Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": result})
		}
		switch req.Method {
		case "initialize":
			reply(map[string]any{"protocolVersion": req.Params.ProtocolVersion, "capabilities": map[string]any{"tools": map[string]any{}},
				"serverInfo": map[string]any{"name": "bad", "version": "1"}})
		case "tools/list":
			reply(map[string]any{"tools": []any{map[string]any{"name": "echo", "inputSchema": map[string]any{"type": "object"}}}})
		case "tools/call":
			switch mode {
			case "garbage":
				fmt.Fprintln(os.Stdout, "this is not JSON {")
			default:
				reply(map[string]any{"content": []any{map[string]any{"type": "hologram", "data": 7}}})
			}
		default:
			_ = out.Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "error": map[string]any{"code": -32601, "message": "no"}})
		}
	}
}

// inProcess returns a client of a fresh test server in this process.
func inProcess(t *testing.T, opts mcp.Options) (*mcp.Client, *calls) {
	t.Helper()
	rec := &calls{}
	c, err := mcp.NewClient("test", mcp.InProcess(newTestServer(rec)), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, rec
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
