// Crash shows an agent run surviving kill -9 of its worker process.
//
// The agent books a trip with four tools: reserve_flight, reserve_hotel,
// charge_card and send_confirmation. The program starts a worker as a
// child process (itself, run again), starts the run, and kills the worker
// with SIGKILL while charge_card is in flight: the card has been charged,
// but the result was never journaled. (Worker 1 is told to stall in that
// tool right after the change, so that the kill lands at that moment, the
// worst one, every time.) It then starts a second worker,
// which takes the run over once the first one's lease expires, replays the
// history (no model call and no tool call that finished runs again), runs
// the cut-off charge_card again with the same idempotency key, and
// finishes. At the end it prints the answer, the side effects as the
// services recorded them outside the workers (each exactly once), and the
// run's history, where the lost attempt shows.
//
//	go run ./examples/crash
//	go run ./examples/crash -kill-in reserve_hotel
//	go run ./examples/crash -redis redis://127.0.0.1:6379/0
//
// With OTEL_EXPORTER_OTLP_ENDPOINT set, every process of the example, the
// parent and each worker, sends its spans, cairn's metrics and its logs to
// that OTLP collector (Jaeger, Grafana Tempo, an OpenTelemetry Collector),
// as the standard OTEL_* variables say (agent/otelsetup); the service is
// cairn-example-crash unless OTEL_SERVICE_NAME names it. The run is one
// trace, under the parent's span, whose id the example prints. Worker 1
// is killed with SIGKILL and so never flushes what it buffered; worker 2
// reports the attempt cut off by the kill (error.type attempt_lost) and
// everything after, and flushes when it stops.
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 go run ./examples/crash
//
// By default the Redis server is github.com/alicebob/miniredis, hosted in
// this process; the workers connect to it over loopback like to any Redis.
// The model is scripted, or a real one when OPENAI_API_KEY (and optionally
// OPENAI_BASE_URL, OPENAI_MODEL) is set.
//
// Dependency: github.com/alicebob/miniredis/v2 is an in-process
// Redis-compatible server (streams, consumer groups, Lua scripts), so this
// example runs with no Redis installed, on a fresh machine. Writing such a
// server ourselves would be worse: more code to trust than the example it
// serves. Only the example and its test use it; cairn's store is tested
// against a real redis-server.
package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
)

func main() {
	if isWorker() {
		if err := runWorker(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "crash worker:", err)
			os.Exit(2)
		}
		return
	}
	redisURL := flag.String("redis", "", "a Redis URL to use; default: a Redis-compatible server in this process (miniredis)")
	killIn := flag.String("kill-in", "charge_card", "the tool during which worker 1 is killed: "+strings.Join(toolNames, ", "))
	// A crashed worker's runs resume on another worker once their leases
	// expire: a short lease makes the takeover quick, at the cost of more
	// frequent renewals (every third of the TTL). Production would use
	// seconds to tens of seconds.
	lease := flag.Duration("lease", time.Second, "the workers' lease TTL: how soon a dead worker's run is taken over")
	flag.Parse()
	if err := mainErr(*redisURL, *killIn, *lease); err != nil {
		fmt.Fprintln(os.Stderr, "crash:", err)
		os.Exit(1)
	}
}

func mainErr(redisURL, killIn string, lease time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if redisURL == "" {
		// Left on real time (no SetTime) and never restarted while the
		// workers use it.
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("start miniredis: %w", err)
		}
		defer m.Close()
		redisURL = "redis://" + m.Addr() + "/0"
		fmt.Printf("Redis: miniredis in this process, at %s\n", m.Addr())
	}
	model := "scripted"
	if os.Getenv("OPENAI_API_KEY") != "" || os.Getenv("OPENAI_BASE_URL") != "" {
		model = "openai:" + cmp.Or(os.Getenv("OPENAI_MODEL"), "gpt-4o-mini")
	}
	_, err := run(ctx, os.Stdout, config{RedisURL: redisURL, KillIn: killIn, Lease: lease, Model: model, Stderr: os.Stderr})
	return err
}

// config configures run.
type config struct {
	RedisURL string
	// KillIn names the tool during which worker 1 is killed.
	KillIn string
	// Lease is the workers' lease TTL.
	Lease time.Duration
	// Model is the workers' model: "scripted" or "openai:<name>".
	Model string
	// Stderr receives the workers' logs.
	Stderr io.Writer
	// Timeout bounds the whole run. Default 60s.
	Timeout time.Duration
}

// report is what run observed.
type report struct {
	RunID   string
	TraceID string // the run's trace, lowercase hex
	Result  agent.RunResult
	Killed  bool                   // worker 1 was killed in the middle of the run
	Effects map[string]effectCount // by tool
	Refs    map[string]string      // "tool key" -> reference of the change
	History []backend.Event
}

// run runs the demonstration and narrates it on out.
func run(ctx context.Context, out io.Writer, cfg config) (*report, error) {
	if !slices.Contains(toolNames, cfg.KillIn) {
		return nil, fmt.Errorf("-kill-in %q: not one of %s", cfg.KillIn, strings.Join(toolNames, ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(cfg.Timeout, 60*time.Second))
	defer cancel()
	out = &lockedWriter{w: out}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	store, err := redis.Open(cfg.RedisURL, redis.WithVisibilityTimeout(cfg.Lease))
	if err != nil {
		return nil, err
	}
	defer store.Close()
	// The run's id is new each time, so that running the example again
	// against the same Redis starts a new run.
	rep := &report{RunID: "trip-" + strings.ToLower(rand.Text()[:6])}
	svc := &services{rdb: store.Client(), prefix: "crash-example:{" + rep.RunID + "}"}
	// This process's spans, metrics and logs; each worker sets up its own
	// from the same OTEL_* variables, which it inherits. Shut down last,
	// once the workers have stopped (the defers before run in reverse).
	otel, err := setupOTel(ctx)
	if err != nil {
		return nil, err
	}
	defer shutdownOTel(otel, "crash")
	// A process that only starts runs and reads them needs no model or
	// tools: the agent's name is enough. Its TracerProvider puts the run
	// in the trace of the span it is started under.
	rt := agent.NewRuntime(store, agent.Options{TracerProvider: otel.TracerProvider, MeterProvider: otel.MeterProvider})
	trip := &agent.Agent{Name: agentName}

	env := []string{envRedis + "=" + cfg.RedisURL, envLease + "=" + cfg.Lease.String(),
		envServices + "=" + svc.prefix, envModel + "=" + cfg.Model}
	fmt.Fprintf(out, "Model: %s. Lease TTL of the workers: %v.\n", cfg.Model, cfg.Lease)
	fmt.Fprintf(out, "Worker 1 will be killed with SIGKILL during %s: after its change is made, before its result is journaled.\n\n", cfg.KillIn)
	w1, err := startWorker(ctx, out, cfg.Stderr, exe, "1", append(env, envStallIn+"="+cfg.KillIn))
	if err != nil {
		return nil, err
	}
	defer w1.kill()

	// The run's spans, emitted by whichever worker commits each step,
	// hang under this process's span: one trace for the whole run.
	reqCtx, span := otel.TracerProvider.Tracer(serviceName).Start(ctx, "handle request")
	_, err = rt.Start(reqCtx, trip, rep.RunID, agent.Input{Message: request})
	span.End()
	if err != nil {
		return nil, err
	}
	info, err := rt.Run(rep.RunID).Describe(ctx)
	if err != nil {
		return nil, err
	}
	rep.TraceID = info.Trace.TraceID.String()
	fmt.Fprintf(out, "Started run %s: %q\n", rep.RunID, request)
	fmt.Fprintf(out, "Its trace: %s\n", rep.TraceID)
	results := make(chan error, 1)
	go func() {
		var err error
		rep.Result, err = rt.Run(rep.RunID).Result(ctx)
		results <- err
	}()

	var heir *worker
	select {
	case tool := <-w1.stalled:
		fmt.Fprintf(out, "\n*** killing worker 1 (SIGKILL) during %s: its change is made, its result not journaled ***\n", tool)
		w1.kill()
		killedAt := time.Now()
		rep.Killed = true
		fmt.Fprintf(out, "worker 1 is gone (%v)\n\n", w1.exit)
		fmt.Fprintf(out, "The run's lease expires within %v; then the next worker replays its history\n", cfg.Lease)
		fmt.Fprintf(out, "(no model call or tool call that finished runs again) and runs %s again, with the same idempotency key.\n", tool)
		heir, err = startWorker(ctx, out, cfg.Stderr, exe, "2", env)
		if err != nil {
			return nil, err
		}
		defer heir.stop()
		select {
		case err = <-results:
		case <-heir.exited:
			return nil, fmt.Errorf("worker 2 exited: %v", heir.exit)
		}
		took := time.Since(killedAt)
		// Its last lines, written before the run ended, come before
		// what follows.
		heir.stop()
		if err == nil {
			fmt.Fprintf(out, "\nThe run finished %v after the kill (worker 2 waited for worker 1's lease to expire).\n",
				took.Round(10*time.Millisecond))
		}
	case err = <-results:
		// A real model may not call the tool at all.
		fmt.Fprintf(out, "\nThe run finished before %s was called: nothing to kill.\n", cfg.KillIn)
	case <-w1.exited:
		return nil, fmt.Errorf("worker 1 exited: %v", w1.exit)
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", rep.RunID, err)
	}
	fmt.Fprintf(out, "\nAnswer: %s\n", rep.Result.Text)

	if rep.Effects, err = svc.counts(ctx); err != nil {
		return nil, err
	}
	if rep.Refs, err = svc.refs(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\nSide effects, as the services recorded them outside the workers (changes, and requests received):\n")
	for _, name := range toolNames {
		c := rep.Effects[name]
		note := ""
		if c.Calls > 1 {
			note = ": the retry carried the same idempotency key and changed nothing"
		}
		fmt.Fprintf(out, "  %-18s %d   (%d %s%s)\n", name+":", c.Effects, c.Calls, plural(c.Calls, "request"), note)
	}

	if rep.History, err = rt.Run(rep.RunID).History(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\nHistory of run %s:\n", rep.RunID)
	if err := durable.WriteTimeline(out, rep.History); err != nil {
		return nil, err
	}
	return rep, nil
}

// worker is a worker process.
type worker struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stalled chan string   // the tool that stalled
	exited  chan struct{} // closed when the process has exited; then exit is set
	exit    error
}

// startWorker starts a worker process, this program run again with env,
// echoes what it reports to out, and waits until it runs.
func startWorker(ctx context.Context, out, stderr io.Writer, exe, name string, env []string) (*worker, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), envWorker+"="+name), env...)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %s: %w", name, err)
	}
	fmt.Fprintf(out, "Starting worker %s (pid %d): this program, run again as a worker\n", name, cmd.Process.Pid)
	w := &worker{name: name, cmd: cmd, stdin: stdin, stalled: make(chan string, 1), exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(w.exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == readyMarker:
				close(ready)
			case strings.HasPrefix(line, stallMarker):
				select {
				case w.stalled <- strings.TrimPrefix(line, stallMarker):
				default:
				}
			default:
				fmt.Fprintf(out, "  worker %s | %s\n", name, line)
			}
		}
		w.exit = cmd.Wait() // after the last read from stdout, as exec requires
	}()
	select {
	case <-ready:
		return w, nil
	case <-w.exited:
		return nil, fmt.Errorf("worker %s exited at start: %v", name, w.exit)
	case <-ctx.Done():
		w.kill()
		return nil, ctx.Err()
	}
}

// kill kills the process with SIGKILL, if it runs, and waits until it has
// exited.
func (w *worker) kill() {
	_ = w.cmd.Process.Kill()
	<-w.exited
}

// stop asks the process to stop, by closing its stdin, and waits until it
// has; it kills it if it takes more than 5s.
func (w *worker) stop() {
	_ = w.stdin.Close()
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		w.kill()
	}
}

// lockedWriter serializes writes: the workers' lines come from their own
// goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
