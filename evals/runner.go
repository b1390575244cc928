package evals

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/log"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
)

// Defaults of a Runner's zero fields.
const (
	DefaultConcurrency    = 4
	DefaultTimeout        = time.Minute
	DefaultMaxCrashPoints = 50
)

// Runner runs cases against an agent. Each trial of a case is a real
// durable run of the agent: a Runtime and a worker of their own, on a
// store of their own, which the trial drives as a user and an approver
// would. Set the fields before Run and do not change them while it runs;
// Run may be called again (a rerun shares the judge's cached verdicts).
type Runner struct {
	// Agent is the agent evaluated. Trials run a copy of it whose tools
	// are wrapped for fixtures and crash cases; the agent is not
	// changed.
	Agent *agent.Agent
	// Store returns the store of one trial. Default: a fresh in-memory
	// store (durable/inmem) per trial. Each call must return a store that
	// no other trial's worker uses at the same time (for Redis, a key
	// prefix of its own, redis.WithPrefix): a trial's worker runs every
	// run of its agent it finds in its store, with the trial's fixtures.
	Store func() backend.Store
	// Concurrency bounds the cases run at once. Default
	// DefaultConcurrency. The trials of a case run one after another.
	Concurrency int
	// Trials is how many times each case runs, unless it says (Case.Trials).
	// Default 1.
	Trials int
	// Timeout bounds each trial, unless the case says. Default
	// DefaultTimeout.
	Timeout time.Duration
	// Graders are applied to every case, after the case's own.
	Graders []Grader
	// Named are the graders GraderSpec kinds name.
	Named map[string]Grader
	// Judge is the model of the "judge" GraderSpec kind.
	Judge providers.Model
	// Prices price tokens for budgets' Cost.
	Prices Prices
	// Tags, if set, run only the cases with one of them.
	Tags []string
	// Progress, if set, is told of each case as it ends: one line
	// rewritten in place when it is a terminal, a line per case
	// otherwise.
	Progress io.Writer
	// MaxCrashPoints bounds the crash trials of a Crash case: with more
	// journal boundaries than that, boundaries evenly spread are chosen.
	// Default DefaultMaxCrashPoints.
	MaxCrashPoints int
	// Logger receives the logs of the trials' runtimes and workers.
	// Default: none.
	Logger *slog.Logger
	// Cache, if set, answers the agent's model calls that it has
	// answered before (see CachedModel): a rerun of an unchanged agent
	// on the same cases calls no model, and gives the same answers.
	Cache *Cache
	// Events, if set, receives a gen_ai.evaluation.result event for each
	// grade of each trial, through the OpenTelemetry Logs API, parented
	// to the span of the run it grades (see EmitEvents). The runs'
	// traces are those of the context given to Run.
	Events log.Logger

	once  sync.Once
	cache *judgeCache
}

func (r *Runner) judgeCache() *judgeCache {
	r.once.Do(func() { r.cache = &judgeCache{} })
	return r.cache
}

// JudgeCalls counts the requests the runner's judges sent to their
// models: a verdict read from the cache sends none.
func (r *Runner) JudgeCalls() int {
	c := r.judgeCache()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Validate checks cases before they run: each has a unique name, an
// input, and graders that can be built (known GraderSpec kinds, patterns
// and schemas that compile, a judge model for judge specs). The error
// names every case at fault.
func (r *Runner) Validate(cases []Case) error {
	var errs []error
	if r.Agent == nil {
		errs = append(errs, errors.New("evals: the runner has no agent"))
	}
	seen := map[string]int{}
	for i := range cases {
		c := &cases[i]
		if c.Name == "" {
			errs = append(errs, fmt.Errorf("case %d: no name", i+1))
			continue
		}
		if j, dup := seen[c.Name]; dup {
			errs = append(errs, fmt.Errorf("case %q: the name of case %d too", c.Name, j+1))
		}
		seen[c.Name] = i
		if c.Message == "" && len(c.Turns) == 0 && c.Replay == nil {
			errs = append(errs, fmt.Errorf("case %q: no input (a message or turns)", c.Name))
		}
		if c.Replay != nil && len(c.Replay.History) == 0 {
			errs = append(errs, fmt.Errorf("case %q: the replay of run %q has no history", c.Name, c.Replay.RunID))
		}
		if c.Message != "" && len(c.Turns) > 0 {
			errs = append(errs, fmt.Errorf("case %q: both a message and turns; give one", c.Name))
		}
		if _, err := r.graders(c); err != nil {
			errs = append(errs, fmt.Errorf("case %q: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// graders are the graders of a case: those Expect implies, the case's
// own, its GraderSpecs resolved, and the runner's.
func (r *Runner) graders(c *Case) ([]Grader, error) {
	gs, err := c.Expect.graders(r.Prices)
	if err != nil {
		return nil, err
	}
	for i, g := range c.Graders {
		if g == nil {
			return nil, fmt.Errorf("grader %d is nil", i+1)
		}
	}
	gs = append(gs, c.Graders...)
	for _, spec := range c.Grade {
		g, err := r.resolve(spec)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	return append(gs, r.Graders...), nil
}

// resolve turns a GraderSpec into a grader: "judge" is a Judge with the
// runner's judge model, another kind the grader registered under it in
// Named (with the spec's Threshold, if set, deciding its pass).
func (r *Runner) resolve(spec GraderSpec) (Grader, error) {
	if spec.Kind == "judge" {
		if r.Judge == nil {
			return nil, errors.New(`grader "judge": the runner has no judge model (Runner.Judge)`)
		}
		if strings.TrimSpace(spec.Rubric) == "" {
			return nil, errors.New(`grader "judge": no rubric`)
		}
		return Judge(r.Judge, spec.Rubric, spec.Threshold), nil
	}
	g, ok := r.Named[spec.Kind]
	if !ok || g == nil {
		known := []string{"judge"}
		for k := range r.Named {
			known = append(known, k)
		}
		slices.Sort(known)
		return nil, fmt.Errorf("unknown grader kind %q (known: %s)", spec.Kind, strings.Join(known, ", "))
	}
	if spec.Threshold > 0 {
		return thresholded{g, spec.Threshold}, nil
	}
	return g, nil
}

// thresholded is a grader whose pass is decided by another threshold.
type thresholded struct {
	Grader
	threshold float64
}

func (t thresholded) Grade(ctx context.Context, o *Outcome) (Score, error) {
	s, err := t.Grader.Grade(ctx, o)
	if err != nil {
		return s, err
	}
	s.Pass = s.Value >= t.threshold
	if s.Label == "pass" || s.Label == "fail" || s.Label == "" {
		s.Label = map[bool]string{true: "pass", false: "fail"}[s.Pass]
	}
	return s, nil
}

// selected reports whether the runner's tags select c.
func (r *Runner) selected(c *Case) bool {
	if len(r.Tags) == 0 {
		return true
	}
	for _, t := range c.Tags {
		if slices.Contains(r.Tags, t) {
			return true
		}
	}
	return false
}

// Run validates cases, then runs those the runner's tags select, at most
// Concurrency at once, and reports them in the order given. A case with
// a Replay starts from its recorded run: each trial's run is seeded with
// the recorded history up to Replay.From (SeedCase), so only the steps
// after it call the model and the tools again. An invalid
// case stops Run before anything runs (see Validate); a case that could
// not be graded (a judge that failed) has StatusError. The error is
// otherwise ctx's, if it ended first.
func (r *Runner) Run(ctx context.Context, cases []Case) (*Report, error) {
	if err := r.Validate(cases); err != nil {
		return nil, err
	}
	var picked []*Case
	for i := range cases {
		if r.selected(&cases[i]) {
			picked = append(picked, &cases[i])
		}
	}
	rep := &Report{Agent: r.Agent.Name, Started: time.Now(), Cases: make([]CaseReport, len(picked))}
	var tok [4]byte
	_, _ = rand.Read(tok[:])
	ctx = context.WithValue(ctx, runTokenKey{}, hex.EncodeToString(tok[:]))
	prog := newProgress(r.Progress, len(picked))
	work := make(chan int)
	var wg sync.WaitGroup
	for range cmpOr(max(0, r.Concurrency), DefaultConcurrency) {
		wg.Go(func() {
			for i := range work {
				rep.Cases[i] = r.runCase(ctx, picked[i])
				prog.done(rep.Cases[i])
			}
		})
	}
feed:
	for i := range picked {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	prog.finish()
	rep.Duration = time.Since(rep.Started)
	if r.Events != nil {
		EmitEvents(ctx, r.Events, rep, rep.runSpans())
	}
	return rep, ctx.Err()
}

// runCase runs a case's trials (and its crash trials) and decides its
// status.
func (r *Runner) runCase(ctx context.Context, c *Case) CaseReport {
	cr := CaseReport{Name: c.Name, Tags: c.Tags}
	graders, err := r.graders(c)
	if err != nil { // checked by Validate; kept for safety
		cr.Status, cr.Error = StatusError, err.Error()
		return cr
	}
	n := c.Trials
	if n <= 0 {
		n = max(1, r.Trials)
	}
	var gradeErrs []string
	passed := 0
	var clean *trialRun
	for i := 1; i <= n; i++ {
		tr := r.trial(ctx, c, i, nil, graders)
		if clean == nil {
			clean = tr
		}
		rep := tr.report()
		gradeErrs = append(gradeErrs, tr.gradeErrs...)
		if rep.Pass {
			passed++
		}
		cr.Trials = append(cr.Trials, rep)
	}
	crashFailed := 0
	if c.Crash && clean != nil {
		for _, tr := range r.crashTrials(ctx, c, clean, n) {
			rep := tr.report()
			if !rep.Pass {
				crashFailed++
			}
			cr.Trials = append(cr.Trials, rep)
		}
	}
	total := len(cr.Trials)
	passedAll := passed + (total - n - crashFailed)
	cr.PassRate = float64(passedAll) / float64(total)
	switch {
	case len(gradeErrs) > 0:
		cr.Status, cr.Error = StatusError, strings.Join(gradeErrs, "; ")
	case passed == n && crashFailed == 0:
		cr.Status = StatusPass
	case passed == 0 || crashFailed > 0:
		// A crash that breaks the run is a failure, not chance.
		cr.Status = StatusFail
	default:
		cr.Status = StatusFlaky
	}
	return cr
}

// grade grades o with graders; it returns the errors of graders that
// could not grade. A judge's call is journaled by journal, if set, and
// its verdict cached in the runner.
func (r *Runner) grade(ctx context.Context, o *Outcome, graders []Grader, journal *judgeJournal) ([]Grade, []string) {
	gctx := withJudgeCache(ctx, r.judgeCache())
	if journal != nil {
		gctx = withJudgeJournal(gctx, journal)
	}
	var grades []Grade
	var errs []string
	for _, g := range graders {
		s, err := g.Grade(gctx, o)
		if err != nil {
			errs = append(errs, fmt.Sprintf("trial %d: grader %s: %v", o.Trial, g.Name(), err))
			s = Score{Label: "error", Explanation: err.Error()}
		}
		s.Value = min(1, max(0, s.Value))
		grades = append(grades, Grade{Grader: g.Name(), Score: s})
	}
	return grades, errs
}

// report is a trial's report: it passes when its run ended well and
// every grade and check passes.
func (tr *trialRun) report() TrialReport {
	o := tr.outcome
	rep := TrialReport{Trial: o.Trial, RunID: o.RunID, Pass: o.Err == nil, Text: o.Text, Calls: o.Calls,
		Tokens: o.Usage.InputTokens + o.Usage.OutputTokens, Turns: o.Turns, Latency: o.Latency, Notes: tr.notes,
		Crash: tr.crashAt, ResponseID: o.ResponseID, trace: tr.trace}
	if o.Err != nil {
		rep.Error = o.Err.Error()
	}
	rep.Grades = append(append(rep.Grades, tr.grades...), tr.checks...)
	for _, g := range rep.Grades {
		rep.Pass = rep.Pass && g.Pass
	}
	return rep
}
