// Command cairnbench measures the Redis store as a deployment runs it:
// worker processes of their own on one redis-server, with the runs
// started from another process.
//
// For each number of worker processes in -workers (1, 2 and 4 by
// default), in one invocation so that the ratios come from the same
// machine at the same time, it starts that many worker processes (this
// program again, with -worker), starts -runs runs of -steps no-op steps
// from the parent (from -starters goroutines), waits for their results
// (one after the other, in the order they were started), and reports:
//
//   - steps/s, from the first start to the last result, and its ratio to
//     one worker process in the same round (x1);
//   - the worker processes' CPU per step, from their own accounting
//     (getrusage RUSAGE_SELF, reported by each worker), the sum of all;
//   - redis-server's CPU per step (INFO cpu: used_cpu_sys +
//     used_cpu_user), and the parent's (the client's) CPU per step;
//   - Redis bytes per completed run: the MEMORY USAGE of all the keys of
//     -sample of the runs (every key with the run's hash tag,
//     <prefix>:{r:<id>}:*), per run and per key; the growth of the keys
//     that no one run owns (task streams, timers, indexes) per run; and
//     the growth of INFO memory used_memory per run, a second view.
//
// Then it starts -waiting runs that sleep for an hour on a durable timer,
// with one worker process, and reports the same bytes for runs that wait.
// -count repeats the whole (rounds), so that the spread shows. -profile
// writes a CPU profile of each worker process of the throughput
// measurements (from its start to its end, warm-up included).
//
// Each round's worker processes run with a fresh store: on the private
// server, the default prefix, its keys deleted between rounds; on a server
// of -redis, a random prefix "cairnbench-<hex>", whose keys are deleted
// at the end. Run ids are 16 hex digits, as the engine's own. Warm-up runs
// (10 per worker process) come before each measurement.
//
// Usage:
//
//	go run ./internal/cmd/cairnbench [-runs 1000] [-steps 10] [-workers 1,2,4] [-count 1]
//	    [-waiting 1000] [-sample 100] [-starters 8] [-max-runs 0] [-redis URL] [-json] [-profile DIR]
//
// Without -redis (whose default is $CAIRN_BENCH_REDIS_URL) it starts a
// private redis-server, from PATH, on a free loopback port, and stops it
// at the end; it never uses a server it was not told of. On a shared
// server, INFO's CPU and used_memory count the other clients' work too.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-dev/cairn/internal/redistest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cairnbench(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cairnbench is the command with its arguments: it returns the exit code,
// 2 for bad arguments.
func cairnbench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		cfg       config
		workers   string
		isWorker  bool
		prefix    string
		timeoutIn time.Duration
		// cpuProfile is the worker process's profile file.
		cpuProfile string
	)
	flags := flag.NewFlagSet("cairnbench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.IntVar(&cfg.runs, "runs", 1000, "runs started at once in each measurement")
	flags.IntVar(&cfg.steps, "steps", 10, "no-op steps of each run")
	flags.StringVar(&workers, "workers", "1,2,4", "numbers of worker processes to measure, comma-separated")
	flags.IntVar(&cfg.count, "count", 1, "rounds: times to repeat all the measurements")
	flags.IntVar(&cfg.waiting, "waiting", 1000, "runs waiting on a timer, for their Redis bytes (0: none)")
	flags.IntVar(&cfg.sample, "sample", 100, "runs whose keys' MEMORY USAGE is summed")
	flags.IntVar(&cfg.starters, "starters", 8, "goroutines that start the runs")
	flags.IntVar(&cfg.maxRuns, "max-runs", 0, "each worker's WorkerOptions.MaxRuns (0: the default)")
	flags.StringVar(&cfg.url, "redis", os.Getenv(redistest.BenchURLEnv), "URL of the redis-server to use (default $"+redistest.BenchURLEnv+"; empty: start a private one)")
	flags.BoolVar(&cfg.json, "json", false, "print the report as JSON")
	flags.StringVar(&cfg.profileDir, "profile", "", "write a CPU profile of each worker process of the throughput measurements to this directory, as round<r>-workers<n>-<i>.prof")
	flags.DurationVar(&timeoutIn, "timeout", 30*time.Minute, "give up after this long")
	flags.BoolVar(&isWorker, "worker", false, "run as a worker process (started by cairnbench itself)")
	flags.StringVar(&prefix, "prefix", "", "the worker process's key prefix")
	flags.StringVar(&cpuProfile, "cpuprofile", "", "the worker process's CPU profile file")
	if err := flags.Parse(args); err != nil {
		return 2
	}

	if isWorker {
		if err := serveWorker(cfg.url, prefix, cfg.maxRuns, cpuProfile); err != nil {
			fmt.Fprintln(stderr, "cairnbench worker:", err)
			return 1
		}
		return 0
	}
	var err error
	if cfg.workers, err = parseWorkers(workers); err != nil {
		fmt.Fprintln(stderr, "cairnbench: -workers:", err)
		return 2
	}
	if cfg.runs < 1 || cfg.steps < 1 || cfg.count < 1 || cfg.starters < 1 || cfg.sample < 1 || cfg.waiting < 0 {
		fmt.Fprintln(stderr, "cairnbench: -runs, -steps, -count, -starters and -sample must be positive, -waiting not negative")
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, timeoutIn)
	defer cancel()
	rep, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "cairnbench:", err)
		return 1
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.write(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "cairnbench:", err)
		return 1
	}
	return 0
}

// config is what the flags set.
type config struct {
	runs, steps, count, waiting, sample, starters, maxRuns int
	workers                                                []int
	url                                                    string
	json                                                   bool
	profileDir                                             string
}

func parseWorkers(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive numbers, comma-separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// run runs every measurement of cfg.
func run(ctx context.Context, cfg config) (*report, error) {
	b := &bench{cfg: cfg}
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return nil, err
		}
	}
	rep := &report{Runs: cfg.runs, Steps: cfg.steps, WaitingRuns: cfg.waiting, Sample: cfg.sample,
		CPUs: runtime.NumCPU(), LoadStart: loadAverage()}
	if cfg.url == "" {
		srv, err := startServer(ctx)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		b.url, b.private = srv.url(), true
		rep.Redis = "private, " + srv.addr
	} else {
		b.url = cfg.url
	}
	if err := b.connect(ctx); err != nil {
		return nil, err
	}
	defer b.rdb.Close()
	if !b.private {
		rep.Redis = "shared, " + b.rdb.Options().Addr
	}
	fields, err := info(ctx, b.rdb, "server")
	if err != nil {
		return nil, err
	}
	rep.RedisVersion = fields["redis_version"]
	rtt, err := roundTrip(ctx, b.rdb)
	if err != nil {
		return nil, err
	}
	rep.RTTMicros = micros(rtt)

	for round := 1; round <= cfg.count; round++ {
		var one float64
		for _, n := range cfg.workers {
			t, err := b.throughput(ctx, round, n)
			if err != nil {
				return nil, fmt.Errorf("round %d, %d worker processes: %w", round, n, err)
			}
			if n == cfg.workers[0] {
				one = t.StepsPerSec
			}
			t.XFirst = t.StepsPerSec / one
			rep.Throughput = append(rep.Throughput, t)
		}
		if cfg.waiting > 0 {
			w, err := b.waitingRuns(ctx, round)
			if err != nil {
				return nil, fmt.Errorf("round %d, waiting runs: %w", round, err)
			}
			rep.Waiting = append(rep.Waiting, w)
		}
	}
	rep.LoadEnd = loadAverage()
	return rep, nil
}

// loadAverage returns the system's load averages (1, 5 and 15 minutes),
// or "" where /proc/loadavg does not tell them.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
