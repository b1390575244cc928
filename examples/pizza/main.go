// Pizza is cairn's first example: a pizza shop's order taker as a durable
// AI agent.
//
// The agent "pizza" has five tools: take_order, prepare_pizza,
// wait_for_oven, deliver_pizza and send_receipt. Four are ordinary Go
// functions, run as activities: each call is journaled in the run's
// history and never made again once it has finished, not even after a
// crash. wait_for_oven is a workflow tool: its body is workflow code that
// waits on a durable timer, during which the run holds no goroutine and no
// memory in any worker.
//
// The example starts a worker in the same process, starts a run, follows
// its live events (the model's text and the tools as they start and
// finish), prints the final answer, and ends with the run's history: every
// step the run journaled.
//
//	go run ./examples/pizza                  # no setup: in-memory store, scripted model
//	go run ./examples/pizza -wait 5s         # bake for longer
//	go run ./examples/pizza -redis redis://localhost:6379/0
//
// Without OPENAI_API_KEY the model is scripted: it plays a plausible
// conversation, deterministically. With OPENAI_API_KEY set it is a real
// model (OPENAI_MODEL, default gpt-4o-mini), at OPENAI_BASE_URL if set, so
// any OpenAI-compatible server works (Ollama, vLLM, llama.cpp).
//
// With -trace the example ends with the run's trace: the spans cairn
// emitted for it (invoke_agent, chat, execute_tool, timer), as a tree
// under the span of the code that started it. With
// OTEL_EXPORTER_OTLP_ENDPOINT set the spans, cairn's metrics and the logs
// are also sent to that OTLP collector (Jaeger, Grafana Tempo, an
// OpenTelemetry Collector), as the standard OTEL_* variables say
// (agent/otelsetup); the service is cairn-example-pizza unless
// OTEL_SERVICE_NAME names it:
//
//	go run ./examples/pizza -trace
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 go run ./examples/pizza
//
// With -redis the run lives in Redis. Its id is fixed ("pizza-1"):
// running the example again shows the existing run instead of ordering a
// second pizza, and a run cut off by Ctrl-C (try it during the wait) is
// carried on by the next run of the example, from its first unfinished
// step.
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
	"github.com/cairn-dev/cairn/internal/spantree"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/openai"
)

// runID names the example's run. Run ids are the caller's: starting an id
// that exists, with the same input, returns the existing run.
const runID = "pizza-1"

// order is what the customer asks for.
const order = "One large margherita to 12 Via Roma, please. Send the receipt to ada@example.com."

func main() {
	wait := flag.Duration("wait", 2*time.Second, "how long the pizza bakes (a durable timer)")
	redisURL := flag.String("redis", "", "a Redis URL (redis:// or rediss://) to keep runs in; default: in memory")
	showTrace := flag.Bool("trace", false, "print the run's spans at the end, as a tree")
	flag.Parse()
	if err := mainErr(*redisURL, config{wait: *wait, trace: *showTrace}); err != nil {
		fmt.Fprintln(os.Stderr, "pizza:", err)
		os.Exit(1)
	}
}

// config is how the example runs.
type config struct {
	wait  time.Duration // how long the pizza bakes
	trace bool          // print the run's trace at the end
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
	err = runWith(ctx, os.Stdout, store, model, cfg)
	if ctx.Err() != nil && redisURL != "" {
		return errors.New("interrupted: the run is kept in Redis; run the example again to carry it on")
	}
	return err
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
		return scriptedWaiter(), nil
	}
	// openai.New reads OPENAI_API_KEY and OPENAI_BASE_URL itself.
	return openai.New(cmp.Or(os.Getenv("OPENAI_MODEL"), "gpt-4o-mini"))
}

// run orders a pizza from the agent, the pizza baking for wait, and shows
// the run: its live events, its final answer and its history.
func run(ctx context.Context, w io.Writer, store backend.Store, model providers.Model, wait time.Duration) error {
	return runWith(ctx, w, store, model, config{wait: wait})
}

// runWith is run as cfg says: it also shows the run's trace if asked.
func runWith(ctx context.Context, w io.Writer, store backend.Store, model providers.Model, cfg config) error {
	// Spans, metrics and logs go to providers of the example's own,
	// built from the OTEL_* variables and given to the Runtime.
	// They are shut down last, once the worker has stopped: the worker
	// emits a run's spans and metrics as it writes its history.
	tel, err := spantree.Setup(ctx, "cairn-example-pizza")
	if err != nil {
		return err
	}
	defer func() {
		if err := tel.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "pizza: exporting telemetry:", err)
		}
	}()

	out := &console{w: w}
	pizza := newPizzaAgent(out, model, cfg.wait)

	// A Runtime binds agents to a store. Every process that runs the
	// agent's runs registers it; one that only starts runs or reads
	// them need not.
	rt := agent.NewRuntime(store, tel.Options()) // traces, metrics and logs
	if err := rt.Register(pizza); err != nil {
		return err
	}

	// A worker executes runs. It would usually be a process of its own,
	// or several: here it runs beside the code that starts the run.
	// Live events are written in the background: once the worker has
	// stopped, let the last ones out before the store closes.
	defer flush(rt)
	worker := rt.NewWorker(durable.WorkerOptions{})
	stopWorker := runInBackground(ctx, worker.Run)
	defer stopWorker()

	if info, err := rt.Run(runID).Describe(ctx); err == nil {
		// Only with Redis: the store outlived the last run of the
		// example. Its finished steps are not done again.
		what := "carrying it on from its first unfinished step"
		if info.Status.Terminal() {
			what = "showing it rather than ordering again"
		}
		fmt.Fprintf(out, "Run %s exists already (%s): %s.\n", runID, info.Status, what)
	}
	fmt.Fprintf(out, "Customer: %s\n", order)
	// The run's spans hang under the span of the code that starts it.
	var run *durable.Run[agent.RunResult]
	err = tel.InSpan(ctx, "handle request", func(ctx context.Context) (err error) {
		run, err = rt.Start(ctx, pizza, runID, agent.Input{Message: order})
		return err
	})
	if err != nil {
		return err
	}
	result, err := followUntilDone(ctx, rt, run, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nFinal answer (%d turns, %d tokens):\n%s\n", result.Turns, result.Usage.TotalTokens, result.Text)

	history, err := run.History(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nWorkflow History")
	if err := durable.WriteTimeline(out, history); err != nil || !cfg.trace {
		return err
	}
	return tel.PrintRun(ctx, out, runID, 3*time.Second)
}

// followUntilDone prints the run's live events while waiting for its
// result. The result is the truth; the live feed is a view, which may have
// expired or lost an event. So once the result is in, the feed is given a
// moment to show its last events and no more.
func followUntilDone(ctx context.Context, rt *agent.Runtime, run *durable.Run[agent.RunResult], out *console) (agent.RunResult, error) {
	followCtx, stopFollowing := context.WithCancel(ctx)
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		_ = follow(followCtx, rt, run.ID, out) // ends when the run finishes
	}()
	result, err := run.Result(ctx)
	select {
	case <-followed:
	case <-time.After(time.Second):
	}
	stopFollowing()
	<-followed
	out.endText()
	return result, err
}

// runInBackground runs fn in a goroutine until the returned function is
// called, which cancels fn's context and waits for it to return.
func runInBackground(ctx context.Context, fn func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "pizza: worker:", err)
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
