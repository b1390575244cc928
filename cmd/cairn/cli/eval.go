package cli

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/evals"
)

// Evaluator runs evaluation cases against an agent for cairn eval: each
// case a real durable run of the agent, graded, with the trials each
// asks for (see evals.Runner). It returns the report of the cases it
// ran, and an error only when it could not run them (a store it cannot
// reach, a case it rejects), not when cases fail: that is the report's.
type Evaluator func(ctx context.Context, a *agent.Agent, cases []evals.Case, opts EvalOptions) (*evals.Report, error)

// RunnerEvaluator is an Evaluator that runs the cases with an
// evals.Runner on the agent, with the command's trials, concurrency and
// progress: on in-memory stores, or, with --redis, on that Redis server,
// each trial under a key prefix of its own ("cairn-eval:" TOKEN ":" N, as
// the runner wants), its stores closed when the cases end. configure, if
// set, completes the runner before it runs: a judge model for judge
// graders, named graders, prices, a logger. RunnerEvaluator(nil) is
// cairn eval's evaluator when App.Evaluate is nil.
func RunnerEvaluator(configure func(r *evals.Runner)) Evaluator {
	return func(ctx context.Context, a *agent.Agent, cases []evals.Case, o EvalOptions) (*evals.Report, error) {
		r := &evals.Runner{Agent: a, Trials: o.Trials, Concurrency: o.Concurrency, Progress: o.Progress}
		if o.Cache != "" {
			cache, err := evals.OpenCache(o.Cache)
			if err != nil {
				return nil, usageError("--cache %s: %v", o.Cache, err)
			}
			r.Cache = cache
		}
		if o.Redis != "" {
			stores, err := newTrialStores(ctx, o.Redis, o.TLS)
			if err != nil {
				return nil, err
			}
			defer stores.close()
			r.Store = stores.next
		}
		if configure != nil {
			configure(r)
		}
		return r.Run(ctx, cases)
	}
}

// trialStores gives each trial a Redis store of its own, on one client.
type trialStores struct {
	client goredis.UniversalClient
	token  string
	mu     sync.Mutex
	stores []*redis.Store
}

func newTrialStores(ctx context.Context, url string, tlsConfig *tls.Config) (*trialStores, error) {
	client, err := redis.NewClient(url, tlsConfig)
	if err != nil {
		return nil, usageError("--redis: %v", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("cannot reach Redis at %s: %w%s", redactURL(url), err, connectHint(err, tlsConfig))
	}
	var tok [4]byte
	_, _ = rand.Read(tok[:])
	return &trialStores{client: client, token: hex.EncodeToString(tok[:])}, nil
}

func (s *trialStores) next() backend.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := redis.New(s.client, redis.WithPrefix(fmt.Sprintf("cairn-eval:%s:%d", s.token, len(s.stores)+1)),
		redis.WithLogger(slog.New(slog.DiscardHandler)))
	s.stores = append(s.stores, st)
	return st
}

func (s *trialStores) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.stores {
		st.Close()
	}
	s.client.Close()
}

// EvalOptions are cairn eval's settings for the Evaluator; zero fields
// mean the evaluator's defaults.
type EvalOptions struct {
	// Trials runs each case that many times, unless the case says.
	Trials int
	// Concurrency bounds the cases run at once.
	Concurrency int
	// Redis is the Redis URL of the store the runs are in, in any form
	// redis.Open takes; "" means an in-memory store.
	Redis string
	// TLS is the TLS configuration of Redis (redis.WithTLS), from the
	// --tls-* flags; nil means the URL's own.
	TLS *tls.Config
	// Progress is where a progress display may go (the terminal's
	// standard error); the report is written by cairn eval itself.
	Progress io.Writer
	// Cache is a directory of cached model responses (evals.OpenCache);
	// "" means none.
	Cache string
}

// evalCommand is eval AGENT DATASET...: it reads the datasets
// (evals.LoadFile; case names unique across them), keeps the cases with
// one of the --tags if given, runs them against the program's agent of
// that name with App.Evaluate (default: RunnerEvaluator(nil)), and prints the report as a table
// (evals.Report.WriteText). It writes the reports asked for (--json,
// the form --baseline reads; --junit; --html), and, with --baseline,
// compares the report with that earlier one and prints the changes
// (evals.Compare).
//
// It exits with ExitFailure when a case regressed against the baseline,
// or fails or errs (a flaky case does not: it is reported as flaky), so
// it gates CI; with ExitUsage for a bad command line or an unknown agent;
// and with ExitFailure, before running anything, for a dataset or
// baseline it cannot read.
func (app App) evalCommand() *command {
	return &command{
		name:    "eval",
		args:    "AGENT DATASET... [--trials N] [--concurrency N] [--tags a,b] [--baseline FILE] [--json FILE] [--junit FILE] [--html FILE] [--cache DIR]",
		summary: "Run evaluation datasets (.jsonl, .yaml) against an agent and report; exit 1 on a failed case or a regression.",
		nargs:   func(n int) bool { return n >= 2 },
		flags: func(fs *flag.FlagSet, o *opts) {
			fs.IntVar(&o.trials, "trials", 0, "run each case N times, unless the case says how many (default: the evaluator's, 1)")
			fs.IntVar(&o.concurrency, "concurrency", 0, "run at most N cases at once (default: the evaluator's)")
			fs.StringVar(&o.tags, "tags", "", "only the cases with one of these comma-separated tags")
			fs.StringVar(&o.baseline, "baseline", "", "compare with this earlier report (written by --json)")
			fs.StringVar(&o.jsonFile, "json", "", "write the report as JSON to this file")
			fs.StringVar(&o.junitFile, "junit", "", "write the report as JUnit XML to this file")
			fs.StringVar(&o.htmlFile, "html", "", "write the report as an HTML page to this file")
			fs.StringVar(&o.conn.redis, "redis", "", "run the cases in the Redis store at this `URL` (default: in memory); --tls-* as for the other commands")
			tlsFlags(fs, &o.conn)
			fs.StringVar(&o.cache, "cache", "", "answer model calls made before from the responses cached in this directory, and cache new ones")
		},
		run: cmdEval,
	}
}

func cmdEval(ctx context.Context, e *env, args []string) error {
	if e.o.trials < 0 || e.o.concurrency < 0 {
		return usageError("--trials and --concurrency take a number of at least 0")
	}
	a, err := e.app.agent(args[0])
	if err != nil {
		return err
	}
	cases, err := loadDatasets(args[1:])
	if err != nil {
		return err
	}
	if e.o.tags != "" {
		cases = withTags(cases, strings.Split(e.o.tags, ","))
		if len(cases) == 0 {
			return fmt.Errorf("no case has one of the tags %s", e.o.tags)
		}
	}
	var baseline *evals.Report
	if e.o.baseline != "" {
		if baseline, err = readReport(e.o.baseline); err != nil {
			return err
		}
	}
	evaluate := e.app.Evaluate
	if evaluate == nil {
		evaluate = RunnerEvaluator(nil)
	}
	opts := EvalOptions{Trials: e.o.trials, Concurrency: e.o.concurrency, Redis: e.o.conn.redis, Progress: e.errOut, Cache: e.o.cache}
	if opts.Redis != "" {
		if opts.TLS, err = e.app.tlsConfig(e.o.conn); err != nil {
			return err
		}
	}
	report, err := evaluate(ctx, a, cases, opts)
	if err != nil {
		return fmt.Errorf("run the cases: %w", err)
	}
	if err := report.WriteText(e.out); err != nil {
		return err
	}
	for _, file := range []struct {
		path, what string
		write      func(io.Writer) error
	}{
		{e.o.jsonFile, "JSON report", report.WriteJSON},
		{e.o.junitFile, "JUnit XML", report.WriteJUnit},
		{e.o.htmlFile, "HTML page", report.WriteHTML},
	} {
		if file.path == "" {
			continue
		}
		if err := writeFile(file.path, file.write); err != nil {
			return err
		}
		fmt.Fprintf(e.out, "Wrote the %s to %s\n", file.what, file.path)
	}
	cmp := evals.Compare(baseline, report)
	if baseline != nil {
		fmt.Fprintln(e.out)
		if err := cmp.WriteText(e.out); err != nil {
			return err
		}
	}
	if cmp.Failed() {
		var why []string
		if n := cmp.Count(evals.Regression); n > 0 {
			why = append(why, fmt.Sprintf("%d %s regressed", n, plural(n, "case", "cases")))
		}
		if n := cmp.Failing(); n > 0 {
			why = append(why, fmt.Sprintf("%d %s failed", n, plural(n, "case", "cases")))
		}
		return errors.New(strings.Join(why, ", "))
	}
	return nil
}

// agent finds the program's agent by name.
func (app App) agent(name string) (*agent.Agent, error) {
	names := make([]string, 0, len(app.Agents))
	for _, a := range app.Agents {
		if a.Name == name {
			return a, nil
		}
		names = append(names, a.Name)
	}
	if len(names) == 0 {
		return nil, usageError("agent %q: this program has no agents (a program mounts the tool with its agents in cli.App.Agents)", name)
	}
	return nil, usageError("agent %q: not one of this program's agents: %s", name, strings.Join(names, ", "))
}

// loadDatasets reads the dataset files; a case name must be unique
// across them.
func loadDatasets(paths []string) ([]evals.Case, error) {
	var all []evals.Case
	from := map[string]string{}
	for _, path := range paths {
		cases, err := evals.LoadFile(path)
		if err != nil {
			return nil, err
		}
		for _, c := range cases {
			if other, ok := from[c.Name]; ok {
				return nil, fmt.Errorf("%s: case %q: the name is taken by a case in %s", path, c.Name, other)
			}
			from[c.Name] = path
		}
		all = append(all, cases...)
	}
	return all, nil
}

// withTags keeps the cases with at least one of the tags.
func withTags(cases []evals.Case, tags []string) []evals.Case {
	var kept []evals.Case
	for _, c := range cases {
		if slices.ContainsFunc(c.Tags, func(t string) bool { return slices.Contains(tags, t) }) {
			kept = append(kept, c)
		}
	}
	return kept
}

func readReport(path string) (*evals.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	defer f.Close()
	r, err := evals.ReadReport(f)
	if err != nil {
		return nil, fmt.Errorf("baseline %s: %w", path, err)
	}
	return r, nil
}

// writeFile writes a file with write, and reports the first error.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
