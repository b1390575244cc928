// Approval shows a durable agent that stops for a person's approval in the
// middle of its loop, for as long as it takes, and carries on once a
// person allowed to has decided.
//
// The agent "support" has two tools: lookup_order, and refund, which needs
// approval for more than 50 euros (tools.RequireApprovalIf). A customer
// asks for a refund of 120 euros. The run records the request and waits
// with status awaiting_approval: it holds no worker while it waits, it is
// only data in the store. The example then plays the back office, from a
// second Runtime on the same store, as another process would: it lists the
// pending approvals, shows that someone who may not approve refunds is
// refused (agent.ErrNotAuthorized, from the Authorizer), and has the
// manager approve. The run goes on, the refund is made once, the agent
// answers, and the run's history shows every step, the decision and who
// made it.
//
//	go run ./examples/approval                             # no setup: the manager approves automatically
//	go run ./examples/approval -prompt                     # you decide at the terminal, as the manager
//	go run ./examples/approval -prompt -as bob@example.com # ... or as someone who may not
//	go run ./examples/approval -redis redis://localhost:6379/0
//	go run ./examples/approval -redis redis://localhost:6379/0 -serve   # decide with cmd/cairn
//
// With -trace the example ends with the run's trace: the spans cairn
// emitted for it (invoke_agent, chat, execute_tool, await_approval), as a
// tree under the span of the code that started it. With
// OTEL_EXPORTER_OTLP_ENDPOINT set the spans, cairn's metrics and the logs
// are also sent to that OTLP collector (Jaeger, Grafana Tempo, an
// OpenTelemetry Collector), as the standard OTEL_* variables say
// (agent/otelsetup); the service is cairn-example-approval unless
// OTEL_SERVICE_NAME names it:
//
//	go run ./examples/approval -trace
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 go run ./examples/approval
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc go run ./examples/approval
//
// Without OPENAI_API_KEY the model is scripted; with it, a real model
// (OPENAI_MODEL, default gpt-4o-mini, at OPENAI_BASE_URL if set) decides
// what to call, and may not ask for a refund at all.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/examples/internal/support"
	"github.com/cairn-dev/cairn/internal/spantree"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/openai"
)

// runID names the example's run. With Redis, running the example again
// finds the same run: finished, it is shown; still waiting, it is decided.
const runID = "refund-1"

// complaint is the customer's message.
const complaint = "My order A-1001 arrived 50 minutes late and cold. I'd like my 120 euros back."

// config says who decides, and how.
type config struct {
	prompt bool      // ask at the terminal rather than approve automatically
	as     string    // who decides
	in     io.Reader // what -prompt reads
	trace  bool      // print the run's trace at the end
	serve  bool      // decide nothing: serve the run until someone decides with cmd/cairn
}

func main() {
	redisURL := flag.String("redis", "", "a Redis URL (redis:// or rediss://) to keep runs in; default: in memory")
	prompt := flag.Bool("prompt", false, "decide at the terminal (y/n and a reason) instead of approving automatically")
	as := flag.String("as", manager, "who decides")
	showTrace := flag.Bool("trace", false, "print the run's spans at the end, as a tree")
	serve := flag.Bool("serve", false, "decide nothing: run the worker until the run ends, for the decision to come from "+
		"elsewhere (cairn approve, with -redis)")
	flag.Parse()
	if *serve && *redisURL == "" {
		fmt.Fprintln(os.Stderr, "approval: -serve needs -redis: the decision comes from another process")
		os.Exit(2)
	}
	if err := mainErr(*redisURL, config{prompt: *prompt, as: *as, in: os.Stdin, trace: *showTrace, serve: *serve}); err != nil {
		fmt.Fprintln(os.Stderr, "approval:", err)
		os.Exit(1)
	}
}

func mainErr(redisURL string, cfg config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	store, closeStore, err := openStore(redisURL)
	if err != nil {
		return err
	}
	defer closeStore()
	model, err := newModel()
	if err != nil {
		return err
	}
	return run(ctx, os.Stdout, store, model, cfg)
}

// openStore opens the store runs are kept in: Redis if a URL is given, or
// else memory, which needs no setup but forgets everything on exit.
func openStore(redisURL string) (backend.Store, func(), error) {
	if redisURL == "" {
		return inmem.New(), func() {}, nil
	}
	store, err := redis.Open(redisURL)
	if err != nil {
		return nil, nil, err
	}
	return store, func() { store.Close() }, nil
}

// newModel returns a real model if OPENAI_API_KEY is set, or else the
// scripted one.
func newModel() (providers.Model, error) {
	if os.Getenv("OPENAI_API_KEY") == "" {
		return support.Scripted(), nil
	}
	// openai.New reads OPENAI_API_KEY and OPENAI_BASE_URL itself.
	return openai.New(cmp.Or(os.Getenv("OPENAI_MODEL"), "gpt-4o-mini"))
}

// run starts the customer's request, decides its approvals as cfg says,
// and prints the answer and the run's history, and its trace if asked.
func run(ctx context.Context, w io.Writer, store backend.Store, model providers.Model, cfg config) error {
	// Spans, metrics and logs go to providers of the example's own,
	// built from the OTEL_* variables: every Runtime is given them.
	// They are shut down last, once the worker has stopped: the worker
	// emits a run's spans and metrics as it writes its history.
	tel, err := spantree.Setup(ctx, "cairn-example-approval")
	if err != nil {
		return err
	}
	defer func() {
		if err := tel.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "approval: exporting telemetry:", err)
		}
	}()

	// Who may decide is checked by the Authorizer of the Runtime that
	// sends the decision: give every Runtime the same one.
	auth := onlyManagers(manager)

	// The service: the agent, and a worker that runs it.
	pay := support.NewPayments(w)
	support := support.NewAgent(model, pay)
	opts := tel.Options() // traces, metrics and logs
	opts.Authorizer = auth
	rt := agent.NewRuntime(store, opts)
	if err := rt.Register(support); err != nil {
		return err
	}
	// Live events are written in the background: once the worker has
	// stopped, let the last ones out before the store closes.
	defer flush(rt)
	stopWorker := startWorker(ctx, rt)
	defer stopWorker()

	if info, err := rt.Run(runID).Describe(ctx); err == nil {
		// Only with Redis: the store outlived the last run of the
		// example. Starting the same id with the same input returns it.
		fmt.Fprintf(w, "Run %s exists already (%s).\n", runID, info.Status)
	}
	fmt.Fprintf(w, "Customer: %s\n", complaint)
	// The run's spans hang under the span of the code that starts it.
	var run *durable.Run[agent.RunResult]
	err = tel.InSpan(ctx, "handle request", func(ctx context.Context) (err error) {
		run, err = rt.Start(ctx, support, runID, agent.Input{Message: complaint})
		return err
	})
	if err != nil {
		return err
	}

	// The back office: another Runtime on the same store, with no agent
	// registered and no worker, as another process would be.
	approver := agent.NewRuntime(store, opts)
	decide := decideAs(cfg.as)
	if cfg.prompt {
		decide = ask(cfg.in, w, cfg.as)
	}
	if cfg.serve {
		fmt.Fprintf(w, "Serving run %s until it ends; decide its approvals from another terminal:\n"+
			"  cairn approvals\n  cairn approve %s <CALL> --by %s\n", runID, runID, manager)
	} else if err := decideAll(ctx, w, approver, runID, decide); err != nil {
		return err
	}

	result, err := run.Result(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nsupport: %s\n", result.Text)
	fmt.Fprintf(w, "Refunds made by this process: %d\n", pay.Count())
	history, err := run.History(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nWorkflow History")
	if err := durable.WriteTimeline(w, history); err != nil || !cfg.trace {
		return err
	}
	return tel.PrintRun(ctx, w, runID, 3*time.Second)
}

// decideAll decides each call the run asks approval for, until it ends.
func decideAll(ctx context.Context, w io.Writer, approver *agent.Runtime, runID string,
	decide func(agent.PendingCall) (agent.Decision, error)) error {
	decided := map[string]bool{}
	for {
		req, ok, err := nextApproval(ctx, approver, runID, decided)
		if err != nil || !ok {
			return err
		}
		fmt.Fprintf(w, "Run %s is %s: it holds no worker while it waits.\n", runID, backend.StatusAwaitingApproval)
		showRequest(w, req)
		if err := tryAs(ctx, w, approver, req, customer); err != nil {
			return err
		}
		d, err := decide(req)
		if err != nil {
			return err
		}
		if err := approver.Decide(ctx, runID, d); err != nil {
			if errors.Is(err, agent.ErrNotAuthorized) {
				return fmt.Errorf("%w; the run waits on, for someone who may", err)
			}
			return err
		}
		decided[req.CallID] = true
		fmt.Fprintf(w, "%s %s it: %s\n", d.By, verdict(d), d.Reason)
	}
}

func verdict(d agent.Decision) string {
	if d.Approved {
		return "approved"
	}
	return "rejected"
}

// startWorker runs a worker for rt's agents until the returned function is
// called. A worker would usually be a process of its own, or several.
func startWorker(ctx context.Context, rt *agent.Runtime) (stop func()) {
	worker := rt.NewWorker(durable.WorkerOptions{})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := worker.Run(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "approval: worker:", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// flush writes out the runtime's live events still queued, for a few
// seconds at most.
func flush(rt *agent.Runtime) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rt.Flush(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "live events:", err)
	}
}
