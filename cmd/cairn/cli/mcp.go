package cli

import (
	"context"
	"crypto/subtle"
	"flag"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// EnvMCPToken names the environment variable that gives mcp serve's
// bearer token when --token is not set.
const EnvMCPToken = "CAIRN_MCP_TOKEN"

// mcpFlags are mcp serve's flags.
type mcpFlags struct {
	listen string
	agents stringList
	token  string
	stdio  bool
	worker bool
	wait   time.Duration
	cancel bool
}

// mcpServeCommand serves App.Agents as MCP tools (see tools/mcp).
func (app App) mcpServeCommand() *command {
	f := &mcpFlags{}
	return &command{name: "mcp serve", args: "[--listen ADDR] [--agent NAME]... [--token T] [--worker]",
		summary: "Serve the program's agents as MCP tools, over streamable HTTP at /mcp (or --stdio), until interrupted.\n" +
			"A call of an agent's tool starts a durable run (or attaches to the run of its run_id) and returns its answer;\n" +
			"a run that outlives the wait is read by id with cairn_run_result. The runs are executed by the program's workers\n" +
			"(--worker runs one in this process). With a token, every request must carry \"Authorization: Bearer TOKEN\";\n" +
			"without one, only a loopback address is served.",
		store: true, nargs: exactly(0),
		flags: func(fs *flag.FlagSet, _ *opts) {
			fs.StringVar(&f.listen, "listen", "127.0.0.1:8765", "the `ADDR`ess to listen on (loopback by default; beyond it a token is required)")
			fs.Var(&f.agents, "agent", "serve only the agent of this `NAME` (repeat for more; default: all of the program's)")
			fs.StringVar(&f.token, "token", "", "the bearer `TOKEN` every request must carry; default $"+EnvMCPToken)
			fs.BoolVar(&f.stdio, "stdio", false, "serve one client over stdin and stdout instead of HTTP")
			fs.BoolVar(&f.worker, "worker", false, "also run a worker of the agents in this process")
			fs.DurationVar(&f.wait, "wait", mcp.DefaultServeWait, "how long a call waits for its run's answer before it returns the run's id and status")
			fs.BoolVar(&f.cancel, "cancel", false, "offer cairn_cancel_run, with which clients cancel runs")
		},
		run: func(ctx context.Context, e *env, _ []string) error { return e.mcpServe(ctx, f) },
	}
}

func (e *env) mcpServe(ctx context.Context, f *mcpFlags) error {
	agents, err := e.app.servedAgents(f.agents)
	if err != nil {
		return err
	}
	token := e.app.flagOrEnv(f.token, EnvMCPToken)
	if !f.stdio && token == "" && !loopback(f.listen) {
		return usageError("--listen %s is not a loopback address: give --token or set %s, so that not anyone who reaches it runs the agents", f.listen, EnvMCPToken)
	}
	srv, err := mcp.NewAgentServer(e.rt, mcp.ServeOptions{Agents: agents, Name: e.app.name(), Wait: f.wait, Cancel: f.cancel})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if f.worker {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := e.rt.NewWorker(durable.WorkerOptions{}).Run(ctx); err != nil && ctx.Err() == nil {
				fmt.Fprintf(e.errOut, "worker: %v\n", err)
			}
		}()
		defer func() { stop(); <-done }()
	}
	if f.stdio {
		err := srv.MCPServer().Run(ctx, &sdk.StdioTransport{})
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return usageError("--listen %s: %v", f.listen, err)
	}
	mux := http.NewServeMux()
	var h http.Handler = srv
	if token != "" {
		h = requireBearer(token, h)
	}
	mux.Handle("/mcp", h)
	// Requests end with ctx: calls in flight stop waiting, their runs
	// go on.
	web := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	names := make([]string, len(agents))
	for i, a := range agents {
		names[i] = a.Name
	}
	fmt.Fprintf(e.out, "Serving %s as MCP tools at http://%s/mcp\n", strings.Join(names, ", "), ln.Addr())
	served := make(chan error, 1)
	go func() { served <- web.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := web.Shutdown(shutdown); err != nil {
		_ = web.Close()
	}
	return nil
}

// servedAgents are the agents of the names given, all of them if none.
func (app App) servedAgents(names []string) ([]*agent.Agent, error) {
	if len(app.Agents) == 0 {
		return nil, usageError("no agents to serve: run this command from your program, which mounts this tool with cli.App{Agents: ...}")
	}
	if len(names) == 0 {
		return app.Agents, nil
	}
	var out []*agent.Agent
	for _, n := range names {
		i := slices.IndexFunc(app.Agents, func(a *agent.Agent) bool { return a.Name == n })
		if i < 0 {
			return nil, usageError("--agent %s: no such agent (the program has %s)", n, agentNames(app.Agents))
		}
		out = append(out, app.Agents[i])
	}
	return out, nil
}

func agentNames(agents []*agent.Agent) string {
	names := make([]string, len(agents))
	for i, a := range agents {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
}

// loopback reports whether addr's host is a loopback address or
// localhost.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// requireBearer lets through the requests that carry the token.
func requireBearer(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
			http.Error(w, "a valid bearer token is required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
