// MCP is an agent that uses the tools of an MCP server.
//
// By default the server is a small one written in Go with the official
// go-sdk, run in this process: a warehouse with a tool to look up stock,
// one to count a shelf, slowly, reporting progress, and one to reorder,
// which asks the operator how many (an elicitation) and the agent's model
// for a note to the supplier (sampling). The agent's client (tools/mcp)
// lists the server's tools once when the run starts, records the list in
// the run's history with a hash, and calls each tool as a durable
// activity: journaled, never made again once finished, and made again
// with the same idempotency key (in the request's _meta) if a worker dies
// during it. The server's question is a pending question of the run,
// which waits for it without holding a worker (this example answers it
// itself; elsewhere `cairn answer`); its sampling request is a model call
// of the run's own; then the tool is called again with both.
//
//	go run ./examples/mcp                                   # no setup
//	go run ./examples/mcp -server "npx -y @modelcontextprotocol/server-everything"
//	go run ./examples/mcp -url http://localhost:3001/mcp -header "Authorization: Bearer s3cret"
//
// Without OPENAI_API_KEY the model is scripted: it calls the warehouse's
// tools, or, on another server, its echo tool if it has one, and then
// answers with what it read. With OPENAI_API_KEY set it is a real model
// (OPENAI_MODEL, default gpt-4o-mini; OPENAI_BASE_URL for any compatible
// server) that picks tools itself.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/openai"
	"github.com/cairn-dev/cairn/tools/mcp"
)

const runID = "mcp-1"

// config is how the example runs.
type config struct {
	server  string      // a command that runs a server over stdio
	url     string      // a streamable HTTP server's URL
	header  http.Header // headers for url
	message string
}

func main() {
	var cfg config
	var headers headerFlag
	flag.StringVar(&cfg.server, "server", "", `a command that runs an MCP server over stdio, e.g. "npx -y @modelcontextprotocol/server-everything"`)
	flag.StringVar(&cfg.url, "url", "", "the URL of an MCP server over streamable HTTP")
	flag.Var(&headers, "header", `a header sent to -url, "Name: value" (repeatable)`)
	flag.StringVar(&cfg.message, "message", "", "what to ask the agent")
	flag.Parse()
	cfg.header = http.Header(headers)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	model, err := newModel()
	if err == nil {
		err = run(ctx, os.Stdout, inmem.New(), model, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcp:", err)
		os.Exit(1)
	}
}

// newModel returns a real model if OPENAI_API_KEY is set, or else the
// scripted one.
func newModel() (providers.Model, error) {
	if os.Getenv("OPENAI_API_KEY") == "" {
		return scriptedModel(), nil
	}
	return openai.New(cmp.Or(os.Getenv("OPENAI_MODEL"), "gpt-4o-mini"))
}

// transport is the way to the server the flags name.
func (cfg config) transport() (mcp.Transport, string, error) {
	switch {
	case cfg.server != "" && cfg.url != "":
		return nil, "", fmt.Errorf("give -server or -url, not both")
	case cfg.server != "":
		args := strings.Fields(cfg.server)
		return mcp.Command(args[0], args[1:]...), "server", nil
	case cfg.url != "":
		return mcp.StreamableHTTP(cfg.url, cfg.header, nil), "server", nil
	}
	return mcp.InProcess(warehouse()), "warehouse", nil
}

// run runs the agent once and prints what happens.
func run(ctx context.Context, out io.Writer, store backend.Store, model providers.Model, cfg config) error {
	transport, name, err := cfg.transport()
	if err != nil {
		return err
	}
	client, err := mcp.NewClient(name, transport, mcp.Options{Elicitation: true, Sampling: true})
	if err != nil {
		return err
	}
	defer client.Close()
	set, err := client.Tools(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "The %s offers %d tools: %s\n", name, set.Len(), strings.Join(set.Names(), ", "))

	clerk := &agent.Agent{
		Name:         "clerk",
		Instructions: "You answer questions with the tools you have. Be brief.",
		Model:        model,
		Toolsets:     []agent.Toolset{client},
	}
	rt := agent.NewRuntime(store, agent.Options{})
	if err := rt.Register(clerk); err != nil {
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go rt.NewWorker(durable.WorkerOptions{}).Run(wctx)

	message := cmp.Or(cfg.message, "How many blue mugs do we have? Count shelf B2 to be sure.")
	if cfg.message == "" && name != "warehouse" {
		message = "Say hello through the server's echo tool."
	}
	fmt.Fprintf(out, "> %s\n", message)
	run, err := rt.Start(ctx, clerk, runID, agent.Input{Message: message})
	if err != nil {
		return err
	}
	followed := make(chan error, 1)
	go func() { followed <- follow(ctx, rt, run.ID, out, name == "warehouse") }()
	res, err := run.Result(ctx)
	if err != nil {
		return err
	}
	if err := <-followed; err != nil {
		return err
	}
	fmt.Fprintf(out, "%s\n", res.Text)
	return listing(ctx, out, rt, run.ID)
}

// follow prints the run's tool calls and their progress as they happen,
// and answers the server's questions: the warehouse's as an operator
// would, another server's by declining.
func follow(ctx context.Context, rt *agent.Runtime, runID string, out io.Writer, warehouse bool) error {
	return rt.Follow(ctx, runID, "", func(e agent.LiveEvent) error {
		switch e.Type {
		case agent.LiveQuestionAsked:
			a := agent.Answer{CallID: e.CallID, By: "operator", Text: `{"quantity":24}`}
			if !warehouse {
				a.Text, a.Action = "", "decline"
			}
			fmt.Fprintf(out, "  [question] %s: %s\n  [answer] %s %s (as: cairn answer %s %s '%s' --by operator)\n",
				e.Tool, e.Text, cmp.Or(a.Action, "accept"), a.Text, runID, e.CallID, a.Text)
			return rt.Answer(ctx, runID, a)
		case agent.LiveToolStarted:
			fmt.Fprintf(out, "  [tool] %s %s\n", e.Tool, e.Arguments)
		case agent.LiveToolProgress:
			fmt.Fprintf(out, "  [tool] %s: %v/%v %s\n", e.Tool, e.Progress.Progress, e.Progress.Total, e.Progress.Message)
		case agent.LiveToolFinished:
			content := ""
			if e.Result != nil {
				content = e.Result.Content
			}
			if len(content) > 120 {
				content = content[:120] + "…"
			}
			fmt.Fprintf(out, "  [tool] %s: %s\n", e.Tool, content)
		case agent.LiveToolFailed:
			fmt.Fprintf(out, "  [tool] %s attempt %d failed: %s\n", e.Tool, e.Attempt, e.Error)
		case agent.LiveToolNeedsInput:
			for _, r := range e.Input {
				fmt.Fprintf(out, "  [tool] %s asks for input: %s %s\n", e.Tool, r.Kind, r.ID)
			}
		}
		return nil
	})
}

// listing prints the tool list the run recorded, from its history.
func listing(ctx context.Context, out io.Writer, rt *agent.Runtime, runID string) error {
	h, err := rt.Run(runID).History(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nThe run's history:")
	for _, ev := range h {
		detail := string(ev.Payload)
		if len(detail) > 90 {
			detail = detail[:90] + "…"
		}
		if ev.Type == backend.EventActivityScheduled || ev.Type == backend.EventRunStarted {
			detail = ""
		}
		if ev.Type == backend.EventActivityCompleted && strings.HasPrefix(ev.Name, "toolset:") {
			// The tool list, recorded once: replay and later turns use it.
			var list struct {
				Tools []struct{ Name string }
				Hash  string
			}
			if json.Unmarshal(ev.Payload, &list) == nil {
				var names []string
				for _, t := range list.Tools {
					names = append(names, t.Name)
				}
				detail = fmt.Sprintf("tools %s, hash %.12s…", strings.Join(names, ", "), list.Hash)
			}
		}
		fmt.Fprintf(out, "  %-3d %-20s %-24s %s\n", ev.Seq, ev.Type, ev.Name, detail)
	}
	return nil
}

// headerFlag collects -header flags.
type headerFlag http.Header

func (h *headerFlag) String() string { return "" }

func (h *headerFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok {
		return fmt.Errorf("header %q: want Name: value", v)
	}
	if *h == nil {
		*h = headerFlag{}
	}
	http.Header(*h).Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}
