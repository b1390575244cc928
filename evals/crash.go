package evals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
)

// crashLeaseTTL is the lease of the workers of crash trials: a stopped
// worker's run is taken over once it expires, so it is short.
const crashLeaseTTL = 300 * time.Millisecond

// errCrashed is what a stopped worker's commits get: the write never
// reached the store, as if the process had died just before it.
var errCrashed = errors.New("evals: worker stopped by crash injection")

// crashPlan says where a crash trial stops its first worker: before its
// cutBefore-th commit (from 1), which is refused. The trial's run has the
// clean trial's id, runID, in a store of its own: idempotency keys, and
// what tools make of them (a refund's id), are then those of the clean
// run, and the answers can be compared.
type crashPlan struct {
	cutBefore int
	runID     string
}

// hookStore counts the commits made to a store and, with a plan, refuses
// the one the plan names and every later commit of the worker that made
// it, and calls onCut.
type hookStore struct {
	backend.Store
	plan  *crashPlan
	onCut func()

	mu      sync.Mutex
	commits int
	dead    string
	fired   bool
}

func newHookStore(s backend.Store, plan *crashPlan) *hookStore {
	return &hookStore{Store: s, plan: plan}
}

// Commit counts c and forwards it, unless the plan cuts it.
func (h *hookStore) Commit(ctx context.Context, c backend.Commit) error {
	h.mu.Lock()
	if h.fired && c.Lease.Worker == h.dead {
		h.mu.Unlock()
		return errCrashed
	}
	if h.plan != nil && !h.fired && h.commits+1 == h.plan.cutBefore {
		h.fired, h.dead = true, c.Lease.Worker
		onCut := h.onCut
		h.mu.Unlock()
		if onCut != nil {
			onCut()
		}
		return errCrashed
	}
	h.commits++
	h.mu.Unlock()
	return h.Store.Commit(ctx, c)
}

func (h *hookStore) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.commits
}

func (h *hookStore) cut() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fired
}

// store is h with the optional capabilities of the store it wraps that
// the agent runtime uses (Watcher, Feed, Archive).
func (h *hookStore) store() backend.Store {
	w, wok := h.Store.(backend.Watcher)
	f, fok := h.Store.(backend.Feed)
	a, aok := h.Store.(backend.Archive)
	switch {
	case wok && fok && aok:
		return struct {
			*hookStore
			backend.Watcher
			backend.Feed
			backend.Archive
		}{h, w, f, a}
	case wok:
		return struct {
			*hookStore
			backend.Watcher
		}{h, w}
	}
	return h
}

// workers runs a trial's worker, and replaces it when a crash plan cuts
// it off: the old one is stopped (its context canceled, as a deploy
// does) and a new one, of another id, started.
type workers struct {
	rt    *agent.Runtime
	base  string
	crash bool
	// also are workflows the workers run besides the agent's.
	also []durable.WorkflowDefinition

	mu      sync.Mutex
	ctx     context.Context
	n       int
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
	swaps   sync.WaitGroup
}

func newWorkers(rt *agent.Runtime, runID string, crash bool) *workers {
	return &workers{rt: rt, base: runID, crash: crash}
}

func (w *workers) start(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ctx = ctx
	w.launch()
}

// launch starts a worker; w.mu is held.
func (w *workers) launch() {
	w.n++
	opts := durable.WorkerOptions{ID: fmt.Sprintf("%s-w%d", w.base, w.n)}
	if w.crash {
		opts.LeaseTTL = crashLeaseTTL
	}
	wk := w.rt.NewWorker(opts)
	wk.Register(w.also...)
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = wk.Run(ctx)
	}()
	w.cancel, w.done = cancel, done
}

// swap stops the worker and starts another. It does not wait: it is
// called from the worker's own commit.
func (w *workers) swap() {
	w.swaps.Add(1)
	go func() {
		defer w.swaps.Done()
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.stopped {
			return
		}
		w.cancel()
		<-w.done
		w.launch()
	}()
}

// stop stops the worker for good.
func (w *workers) stop() {
	w.mu.Lock()
	w.stopped = true
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
	w.mu.Unlock()
	w.swaps.Wait()
}

// crashPoints are the commits before which crash trials stop the worker:
// each of 1..commits, or max of them evenly spread.
func crashPoints(commits, limit int) []int {
	var pts []int
	if commits <= limit {
		for k := 1; k <= commits; k++ {
			pts = append(pts, k)
		}
		return pts
	}
	for i := range limit {
		k := 1 + i*(commits-1)/max(1, limit-1)
		if len(pts) == 0 || pts[len(pts)-1] != k {
			pts = append(pts, k)
		}
	}
	return pts
}

// crashTrials runs c once for each crash point of the clean trial, and
// checks each against it: the same final text, no error, and no tool
// that does not honour its idempotency key executed twice for one call.
func (r *Runner) crashTrials(ctx context.Context, c *Case, clean *trialRun, trials int) []*trialRun {
	if clean.outcome.Err != nil {
		return nil // the clean trial failed: nothing to compare with
	}
	idempotent := map[string]bool{}
	if r.Agent.Tools != nil {
		for _, t := range r.Agent.Tools.List() {
			idempotent[t.Name()] = t.HonorsIdempotencyKey()
		}
	}
	var out []*trialRun
	for i, k := range crashPoints(clean.commits, cmpOr(max(0, r.MaxCrashPoints), DefaultMaxCrashPoints)) {
		if ctx.Err() != nil {
			break
		}
		tr := r.trial(ctx, c, trials+1+i, &crashPlan{cutBefore: k, runID: clean.outcome.RunID}, nil)
		tr.checks = append(tr.checks, crashCheck(tr, clean, idempotent))
		out = append(out, tr)
	}
	return out
}

// crashCheck grades a crash trial against the clean one.
func crashCheck(tr, clean *trialRun, idempotent map[string]bool) Grade {
	var problems []string
	o := tr.outcome
	if o.Err != nil {
		problems = append(problems, fmt.Sprintf("the run failed after the worker was stopped before commit %d: %v", tr.crashAt, o.Err))
	} else if o.Text != clean.outcome.Text {
		problems = append(problems, fmt.Sprintf("answer %q, want the clean run's %q", clip(o.Text), clip(clean.outcome.Text)))
	}
	keys := make([]execKey, 0, len(tr.executions))
	for k := range tr.executions {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b execKey) int { return strings.Compare(a.tool+a.key, b.tool+b.key) })
	for _, k := range keys {
		if n := tr.executions[k]; n > 1 && !idempotent[k.tool] {
			problems = append(problems, fmt.Sprintf("side effect of %s happened twice (call %s ran %d times; the tool does not honour its idempotency key)", k.tool, k.key, n))
		}
	}
	g := Grade{Grader: "crash"}
	if len(problems) == 0 {
		g.Score = verdict(1, 1, fmt.Sprintf("worker stopped before commit %d; same answer, each side effect once", tr.crashAt))
	} else {
		g.Score = verdict(0, 1, strings.Join(problems, "; "))
	}
	return g
}
