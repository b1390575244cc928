package mcp

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Transport makes a new connection to a server. A Client calls it to
// connect, and again to reconnect after the connection dropped (the server
// crashed, restarted, or closed it), so each call must return a fresh,
// unconnected transport of the go-sdk. Command, StreamableHTTP and
// InProcess make the usual ones.
type Transport func(ctx context.Context) (sdk.Transport, error)

// Command runs a server as a process, and speaks to it over its standard
// input and output (the stdio transport). Each connection starts a new
// process, with the environment of this one; the process's standard error
// goes to this one's. Closing the connection closes its input, then
// terminates it.
func Command(name string, args ...string) Transport {
	return CommandFunc(func() *exec.Cmd { return exec.Command(name, args...) })
}

// CommandFunc is Command for a command that needs more than a name and
// arguments (an environment, a directory): mk returns a new, unstarted
// command each time it is called. A nil Stderr is set to os.Stderr.
func CommandFunc(mk func() *exec.Cmd) Transport {
	return func(context.Context) (sdk.Transport, error) {
		cmd := mk()
		if cmd == nil {
			return nil, fmt.Errorf("command: nil *exec.Cmd")
		}
		if cmd.Stderr == nil {
			cmd.Stderr = os.Stderr
		}
		return &sdk.CommandTransport{Command: cmd}, nil
	}
}

// StreamableHTTP speaks to the server at url over MCP's streamable HTTP
// transport, sending header with every request: an Authorization header,
// an API key. A nil client is http.DefaultClient.
func StreamableHTTP(url string, header http.Header, client *http.Client) Transport {
	if client == nil {
		client = http.DefaultClient
	}
	if len(header) > 0 {
		c := *client
		c.Transport = headerTransport{header: header.Clone(), next: client.Transport}
		client = &c
	}
	return func(context.Context) (sdk.Transport, error) {
		return &sdk.StreamableClientTransport{Endpoint: url, HTTPClient: client}, nil
	}
}

// headerTransport adds headers to every request.
type headerTransport struct {
	header http.Header
	next   http.RoundTripper
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, vs := range t.header {
		r.Header[k] = append([]string(nil), vs...)
	}
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// InProcess connects to a go-sdk server in this process, through an
// in-memory pipe: each connection is a new session of server. For tests,
// examples, and tools written in Go that should still be reached the MCP
// way.
func InProcess(server *sdk.Server) Transport {
	return func(ctx context.Context) (sdk.Transport, error) {
		serverEnd, clientEnd := sdk.NewInMemoryTransports()
		if _, err := server.Connect(context.WithoutCancel(ctx), serverEnd, nil); err != nil {
			return nil, fmt.Errorf("connect in-process server: %w", err)
		}
		return clientEnd, nil
	}
}
