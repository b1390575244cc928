package redis

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// Fault tests on a Redis Cluster of 3 masters (issue 15, "faults at
// scale"): two workers drive many runs of a workflow of many activity
// steps, and a master is killed with SIGKILL in the middle of it.
//
// A run depends on two slots: its own (its record, history and inbox) and
// its partition's (task stream, deadlines, queued set). The runs are
// chosen so that the kill touches them in three known ways (runClass).
// What the brief promises: losing a master affects only the runs whose
// slots it holds; runs whose queue or timer entries were lost are found
// and queued again; with AOF, nothing acknowledged is lost.

const (
	// faultPartitions spreads the partitions over every master (checked
	// at start).
	faultPartitions = 9
	// faultWindow is the length of each window in which the commit rate
	// is measured: long enough that, in the window after the kill, the
	// surviving masters mark the killed one failed (faultNodeTimeout).
	faultWindow = 5 * time.Second
	// faultNodeTimeout is the masters' cluster-node-timeout: after it, the
	// survivors mark a silent master failed, as they would in a real
	// outage, so the window after the kill sees the cluster in that state.
	faultNodeTimeout = 2 * time.Second
	// faultDeadline bounds each eventual outcome: generous, for a noisy
	// machine.
	faultDeadline = 60 * time.Second
	// faultLeaseTTL is the workers' lease: a run let go after an error is
	// taken up again within it.
	faultLeaseTTL = 2 * time.Second
)

// runClass is how killing a master touches a run.
type runClass int

const (
	// unaffected: the run's slot and its partition's are both on
	// surviving masters.
	unaffected runClass = iota
	// partitionLost: the run's record survives, its partition's slot (its
	// task stream, timers and deadlines) is on the killed master.
	partitionLost
	// recordLost: the run's own slot is on the killed master.
	recordLost
	classes = 3
)

func (c runClass) String() string {
	return [...]string{"unaffected", "partition on killed master", "record on killed master"}[c]
}

// How many runs of each class a fault test starts.
var faultQuota = [classes]int{unaffected: 40, partitionLost: 20, recordLost: 20}

// TestClusterKillMasterMidLoad kills a master (kill -9) of a 3-master
// cluster without persistence while two workers drive 80 runs, each a
// long sequence of activity steps; then restarts it, empty.
//
// While the master is down, the commit rate of the runs whose slots are
// all on the surviving masters must stay above half what it was before
// the kill (issue 15 asks for this ratio). Once the master is back, every
// run whose record survived must complete, those whose partition's task
// stream and timers were lost with the master included (the reconciler
// of issue 15 (b) queues them again), and every step's effect must have
// been applied exactly once by an activity that honours its idempotency
// key. The runs whose records were on the killed master are gone with it:
// the test only checks that the store says so.
func TestClusterKillMasterMidLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: kills a master of a 3-master Redis Cluster under load and restarts it (about 20 s); run without -short")
	}
	sc := startFaultScenario(t, "faults", false)
	before, after := sc.killMidLoad()
	assert.Greater(t, after[unaffected], before[unaffected]/2,
		"while master %d was down, the %d runs whose slots are all on surviving masters committed %.0f events/s, "+
			"less than half the %.0f events/s before the kill: their commits wait on the killed master "+
			"(issue 15 (a): global index keys written in every commit?); store and worker warnings: %s",
		sc.killed, faultQuota[unaffected], after[unaffected], before[unaffected], sc.logs.summary())

	sc.restartMaster()
	sc.stop.Store(true)
	// The runs whose records were on the killed master are gone: their
	// keys died with it (no persistence). Only the others must finish.
	live := append(sc.ofClass(unaffected), sc.ofClass(partitionLost)...)
	results := sc.waitCompleted(live)
	for _, id := range sc.ofClass(recordLost) {
		_, err := sc.client.Describe(t.Context(), id)
		assert.ErrorIs(t, err, backend.ErrRunNotFound, "run %s: its record was on the master restarted empty", id)
	}
	sc.checkEffects(results)
}

// TestClusterKillMasterAOF kills a master (kill -9) of a 3-master cluster
// whose masters write an AOF with "appendfsync always", while two workers
// drive 80 runs of many steps, and restarts it: nothing is lost. Every
// run completes, and every step's effect was applied exactly once by an
// activity that honours its idempotency key.
func TestClusterKillMasterAOF(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: kills a master of a 3-master Redis Cluster with AOF under load and restarts it (about 20 s); run without -short")
	}
	sc := startFaultScenario(t, "faultsaof", true)
	// TestClusterKillMasterMidLoad asserts the ratio; here it is told.
	sc.killMidLoad()

	sc.restartMaster()
	sc.stop.Store(true)
	results := sc.waitCompleted(sc.runs)
	sc.checkEffects(results)
}

// openStore returns a store of the fault tests on client, with all their
// options in one place. The reconciler's interval is short, so that the
// runs whose task streams and timers were lost with a master are queued
// again well within faultDeadline.
func openStore(t *testing.T, client goredis.UniversalClient, prefix string, log *slog.Logger) *Store {
	s := New(client, WithPrefix(prefix), WithPartitions(faultPartitions),
		WithVisibilityTimeout(2*time.Second), WithReconcileInterval(500*time.Millisecond), WithLogger(log))
	t.Cleanup(func() { s.Close() })
	return s
}

// faultScenario is a cluster, two workers, and runs of the workflow
// "fault-steps" started on it.
type faultScenario struct {
	t       *testing.T
	cluster *redistest.Cluster
	// killed is the master that killMaster kills: the one that holds
	// <prefix>:status:running, the global index that every commit of a
	// running run wrote before issue 15; the worst master to lose in that
	// layout, and one like any other after it.
	killed  int
	persist bool // the masters write an AOF
	store   *Store
	client  *durable.Client
	wf      *durable.Workflow[int, faultResult]

	runs   []string
	class  map[string]runClass
	events map[string]*atomic.Int64 // events committed, by run, as the workers' observers see them

	ledger *ledger
	// stop makes every step from now on tell its run to end.
	stop atomic.Bool
	logs *logCount
}

// faultStepOut is what a step returns: a value, and whether the run goes on.
type faultStepOut struct {
	Value int64 `json:"value"`
	More  bool  `json:"more"`
}

// faultResult is what a run of "fault-steps" returns: its number of steps
// and the sum of their values.
type faultResult struct {
	Steps int   `json:"steps"`
	Sum   int64 `json:"sum"`
}

// startFaultScenario starts a cluster of 3 masters, with an AOF each if
// persist, two workers on stores of their own (each on its own cluster
// client, as two processes would be), and the runs, and returns when they
// are started. The store keys start with prefix.
func startFaultScenario(t *testing.T, prefix string, persist bool) *faultScenario {
	t.Helper()
	var opts []redistest.Option
	if persist {
		opts = append(opts, redistest.WithAOF())
	}
	// Without full coverage required, the surviving masters serve their
	// slots after they marked the dead one failed; with it (Redis's
	// default) they would refuse every key, which a managed cluster
	// avoids with replicas: this cluster has none.
	opts = append(opts, redistest.WithArgs("--cluster-node-timeout", fmt.Sprint(faultNodeTimeout.Milliseconds()),
		"--cluster-require-full-coverage", "no"))
	sc := &faultScenario{t: t, cluster: redistest.StartCluster(t, 3, opts...), persist: persist,
		class: map[string]runClass{}, events: map[string]*atomic.Int64{}, logs: &logCount{n: map[string]int{}, first: map[string]string{}}}
	sc.ledger = &ledger{byKey: map[string]*ledgerEntry{}}
	log := slog.New(sc.logs)
	// go-redis logs each failed dial, hundreds of them while a master is
	// down, to stderr: count them with the rest. Its logger is global; the
	// package's tests do not run in parallel.
	goredis.SetLogger(sc.logs)
	t.Cleanup(logging.Enable)
	sc.store = openStore(t, sc.cluster.Client(), prefix, log)

	owners := slotOwners(t, sc.cluster)
	master := func(key string) int { return owners[slot(key)] }
	sc.killed = master(prefix + ":status:running")
	var perMaster [3]int
	for n := range faultPartitions {
		perMaster[master(sc.store.partKeys(n).tasks)]++
	}
	require.NotContains(t, perMaster[:], 0, "partitions per master %v: with %d partitions some master holds none; choose another count",
		perMaster, faultPartitions)

	// Run ids, chosen to fill each class's quota.
	var have [classes]int
	for i := 0; have != faultQuota; i++ {
		require.Less(t, i, 100000, "no run ids found to fill the quotas %v (have %v)", faultQuota, have)
		id := fmt.Sprintf("run-%04d", i)
		c := unaffected
		switch {
		case master(sc.store.runKeys(id).run) == sc.killed:
			c = recordLost
		case master(sc.store.partFor(id).keys.tasks) == sc.killed:
			c = partitionLost
		}
		if have[c] < faultQuota[c] {
			have[c]++
			sc.runs = append(sc.runs, id)
			sc.class[id] = c
			sc.events[id] = &atomic.Int64{}
		}
	}
	t.Logf("masters %v; killing master %d; partitions per master %v; runs %v", sc.cluster.Addrs(), sc.killed, perMaster, have)

	step := durable.NewActivity("fault-step", func(ctx context.Context, i int) (faultStepOut, error) {
		info, _ := durable.ActivityInfoFrom(ctx)
		return sc.ledger.apply(info.RunID, info.IdempotencyKey, i, func() bool { return !sc.stop.Load() }), nil
	})
	sc.wf = durable.NewWorkflow("fault-steps", func(ctx durable.Context, _ int) (faultResult, error) {
		var res faultResult
		for more := true; more; {
			out, err := durable.Execute(ctx, step, res.Steps)
			if err != nil {
				return res, err
			}
			res.Steps++
			res.Sum += out.Value
			more = out.More
		}
		return res, nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: sc.cluster.Addrs()})
		t.Cleanup(func() { client.Close() })
		w := durable.NewWorker(openStore(t, client, prefix, log), durable.WorkerOptions{ID: fmt.Sprint("w", i),
			LeaseTTL: faultLeaseTTL, Logger: log, Observers: []durable.Observer{sc.observe}})
		w.Register(sc.wf)
		wg.Go(func() { assert.NoError(t, w.Run(ctx)) })
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		t.Logf("store and worker warnings: %s", sc.logs.summary())
	})

	sc.client = durable.NewClient(sc.store, durable.ClientOptions{})
	for _, id := range sc.runs {
		_, err := sc.wf.Start(t.Context(), sc.client, id, 0)
		require.NoError(t, err, "start run %s", id)
	}
	return sc
}

// observe counts the events the workers commit, by run.
func (sc *faultScenario) observe(_ context.Context, w durable.Written) {
	if n := sc.events[w.Run.ID]; n != nil {
		n.Add(int64(len(w.Events)))
	}
}

func (sc *faultScenario) ofClass(c runClass) []string {
	var ids []string
	for _, id := range sc.runs {
		if sc.class[id] == c {
			ids = append(ids, id)
		}
	}
	return ids
}

// committed returns the events committed so far, by class.
func (sc *faultScenario) committed() [classes]int64 {
	var n [classes]int64
	for id, c := range sc.class {
		n[c] += sc.events[id].Load()
	}
	return n
}

// waitWarm waits until every run has committed a few steps.
func (sc *faultScenario) waitWarm() {
	sc.t.Helper()
	require.EventuallyWithT(sc.t, func(c *assert.CollectT) {
		for _, id := range sc.runs {
			assert.GreaterOrEqual(c, sc.events[id].Load(), int64(20), "events committed to run %s", id)
		}
	}, faultDeadline, 50*time.Millisecond, "runs did not get going on the healthy cluster; warnings: %s", sc.logs.summary())
}

// measure returns the events per second committed to the runs of each
// class over the next d.
// killMidLoad waits for the runs to be under way, measures their commit
// rates, kills the master, measures them again, logs both and returns
// them.
func (sc *faultScenario) killMidLoad() (before, after [classes]float64) {
	sc.waitWarm()
	before = sc.measure(faultWindow)
	sc.killMaster()
	after = sc.measure(faultWindow)
	sc.logRates(before, after)
	return before, after
}

func (sc *faultScenario) measure(d time.Duration) [classes]float64 {
	start, from := time.Now(), sc.committed()
	time.Sleep(d) // the measurement window, not a synchronization
	to, elapsed := sc.committed(), time.Since(start).Seconds()
	var rates [classes]float64
	for c := range rates {
		rates[c] = float64(to[c]-from[c]) / elapsed
	}
	return rates
}

func (sc *faultScenario) logRates(before, after [classes]float64) {
	for c := range classes {
		sc.t.Logf("%-26s %2d runs: %7.0f events/s before the kill, %7.0f while master %d was down (%.2f of before)",
			runClass(c), faultQuota[c], before[c], after[c], sc.killed, after[c]/before[c])
	}
}

// killMaster kills the master with SIGKILL.
func (sc *faultScenario) killMaster() {
	sc.cluster.Masters[sc.killed].Kill()
	sc.t.Logf("killed master %d (%s)", sc.killed, sc.cluster.Masters[sc.killed].Addr())
}

// restartMaster starts the killed master again, with what its AOF kept
// or empty, and waits until it is back in the cluster.
func (sc *faultScenario) restartMaster() {
	sc.t.Helper()
	m := sc.cluster.Masters[sc.killed]
	// Whether the survivors noticed the master was down, for the log.
	if nodes, err := sc.cluster.Masters[(sc.killed+1)%3].Client().ClusterNodes(sc.t.Context()).Result(); err == nil {
		for line := range strings.SplitSeq(nodes, "\n") {
			if strings.Contains(line, m.Addr()) {
				sc.t.Logf("before restart, a survivor says of the killed master: %s", line)
			}
		}
	}
	m.Restart()
	require.EventuallyWithT(sc.t, func(c *assert.CollectT) {
		for i, m := range sc.cluster.Masters {
			info, err := m.Client().ClusterInfo(sc.t.Context()).Result()
			require.NoError(c, err, "master %d", i)
			assert.Contains(c, info, "cluster_state:ok", "master %d", i)
			nodes, err := m.Client().ClusterNodes(sc.t.Context()).Result()
			require.NoError(c, err, "master %d", i)
			assert.NotContains(c, nodes, ",fail", "master %d still sees a node failed", i)
		}
	}, faultDeadline, 50*time.Millisecond, "the restarted master did not rejoin the cluster")
	sc.t.Logf("restarted master %d (%s), with %s", sc.killed, m.Addr(), map[bool]string{true: "its AOF", false: "no data"}[sc.persist])
}

// waitCompleted waits, up to faultDeadline, until every run in ids has
// ended, and checks that each completed. It returns the results of those
// that did.
func (sc *faultScenario) waitCompleted(ids []string) map[string]faultResult {
	sc.t.Helper()
	ctx := sc.t.Context()
	last := map[string]backend.RunInfo{}
	errs := map[string]error{}
	pending := slices.Clone(ids)
	start := time.Now()
	// An Eventually that keeps what it read last, for the report.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for deadline := start.Add(faultDeadline); ; <-tick.C {
		pending = slices.DeleteFunc(pending, func(id string) bool {
			info, err := sc.client.Describe(ctx, id)
			last[id], errs[id] = info, err
			return err == nil && info.Status.Terminal()
		})
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
	}
	sc.t.Logf("%d of %d runs ended within %v (%v)", len(ids)-len(pending), len(ids), faultDeadline, time.Since(start).Round(time.Millisecond))

	// What did not complete, by class and status, with an example each.
	type group struct {
		class runClass
		state string
		stuck bool // the run exists and has not ended
	}
	groups := map[group][]string{}
	results := map[string]faultResult{}
	for _, id := range ids {
		info, err := last[id], errs[id]
		state, stuck := string(info.Status), err == nil && !info.Status.Terminal()
		switch {
		case err != nil:
			state = "error: " + err.Error()
		case info.Status == backend.StatusCompleted:
			res, err := sc.wf.Get(sc.client, id).Result(ctx)
			if err == nil {
				results[id] = res
				continue
			}
			state = "completed, result: " + err.Error()
		case info.Failure != nil:
			state += ": " + info.Failure.Message
		}
		g := group{sc.class[id], state, stuck}
		groups[g] = append(groups[g], id)
	}
	for _, g := range slices.SortedFunc(maps.Keys(groups), func(a, b group) int { return int(a.class - b.class) }) {
		runs := groups[g]
		hint := ""
		if g.class == partitionLost && !sc.persist && g.stuck {
			hint = " (nothing queued them again after their partition's task stream and timers were lost: issue 15 (b), the reconciler)"
		}
		sc.t.Errorf("%d runs (%s) did not complete within %v: %s%s; e.g. %s",
			len(runs), g.class, faultDeadline, g.state, hint, strings.Join(runs[:min(len(runs), 5)], ", "))
	}
	if len(groups) > 0 {
		sc.t.Logf("store and worker warnings: %s", sc.logs.summary())
	}
	return results
}

// checkEffects checks the effects of the completed runs against the
// ledger: each step of each run applied its effect under exactly one
// idempotency key (a step run again after a crash used the same key, so
// the ledger applied it once), no effect was applied beyond a run's last
// step, and each run's result adds up the values the ledger recorded.
func (sc *faultScenario) checkEffects(results map[string]faultResult) {
	sc.t.Helper()
	type stepOf struct {
		run  string
		step int
	}
	keys := map[stepOf][]string{}
	values := map[string]int64{}
	steps := map[string]int{}
	again := 0 // calls with a key already applied: steps run again
	sc.ledger.mu.Lock()
	for key, e := range sc.ledger.byKey {
		if _, ok := results[e.run]; !ok {
			continue
		}
		keys[stepOf{e.run, e.step}] = append(keys[stepOf{e.run, e.step}], key)
		values[e.run] += e.out.Value
		steps[e.run]++
		again += e.calls - 1
	}
	sc.ledger.mu.Unlock()

	var problems []string
	total := 0
	for _, id := range slices.Sorted(maps.Keys(results)) {
		res := results[id]
		total += res.Steps
		for i := range res.Steps {
			if k := keys[stepOf{id, i}]; len(k) != 1 {
				problems = append(problems, fmt.Sprintf("run %s step %d: effect applied under %d idempotency keys %v, want 1", id, i, len(k), k))
			}
		}
		if steps[id] > res.Steps {
			problems = append(problems, fmt.Sprintf("run %s: %d effects applied for %d steps", id, steps[id], res.Steps))
		}
		if values[id] != res.Sum {
			problems = append(problems, fmt.Sprintf("run %s: result sums to %d, its steps' recorded values to %d", id, res.Sum, values[id]))
		}
	}
	sc.t.Logf("%d completed runs, %d steps, each effect applied once; %d calls ran a step again with its key (absorbed by the ledger)",
		len(results), total, again)
	if len(problems) > 0 {
		sc.t.Errorf("%d problems with the effects of completed runs, e.g.:\n%s", len(problems), strings.Join(problems[:min(len(problems), 10)], "\n"))
	}
}

// ledger is the outside system the steps write to. It honours the
// idempotency key as a payment API does: the first call with a key applies
// the effect and records its result; a later call with the same key applies
// nothing and gets the recorded result back.
type ledger struct {
	mu    sync.Mutex
	byKey map[string]*ledgerEntry
	seq   int64
}

type ledgerEntry struct {
	run   string
	step  int // the step's input: its index in the run
	out   faultStepOut
	calls int
}

// apply applies the effect of step i of run under key once; more says,
// when it is applied, whether the run goes on.
func (l *ledger) apply(run, key string, i int, more func() bool) faultStepOut {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.byKey[key]; e != nil {
		e.calls++
		return e.out
	}
	l.seq++
	e := &ledgerEntry{run: run, step: i, out: faultStepOut{Value: l.seq, More: more()}, calls: 1}
	l.byKey[key] = e
	return e.out
}

// slotOwners returns, for each slot, the index in c.Masters of the master
// that serves it, as CLUSTER SLOTS says.
func slotOwners(t *testing.T, c *redistest.Cluster) []int {
	t.Helper()
	ranges, err := c.Client().ClusterSlots(t.Context()).Result()
	require.NoError(t, err, "CLUSTER SLOTS")
	byAddr := map[string]int{}
	for i, m := range c.Masters {
		byAddr[m.Addr()] = i
	}
	owners := make([]int, 16384)
	for i := range owners {
		owners[i] = -1
	}
	for _, r := range ranges {
		require.NotEmpty(t, r.Nodes, "CLUSTER SLOTS range %d-%d", r.Start, r.End)
		m, ok := byAddr[r.Nodes[0].Addr]
		require.True(t, ok, "CLUSTER SLOTS names %s, not a master of the cluster %v", r.Nodes[0].Addr, c.Addrs())
		for s := r.Start; s <= r.End; s++ {
			owners[s] = m
		}
	}
	require.NotContains(t, owners, -1, "CLUSTER SLOTS leaves slots unserved")
	return owners
}

// logCount is a slog.Handler that counts the warnings and errors logged,
// by message, and keeps the first error of each; as a go-redis logger, it
// counts its lines by format. So a fault test reports what the store, the
// workers and go-redis complained of without printing thousands of lines.
// It is safe for concurrent use.
type logCount struct {
	mu    sync.Mutex
	n     map[string]int
	first map[string]string
}

func (h *logCount) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *logCount) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[r.Message]++
	if _, ok := h.first[r.Message]; !ok {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				h.first[r.Message] = a.Value.String()
				return false
			}
			return true
		})
	}
	return nil
}

// Printf counts a line of go-redis's log by its format.
func (h *logCount) Printf(_ context.Context, format string, v ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := "go-redis: " + format
	h.n[msg]++
	if _, ok := h.first[msg]; !ok {
		h.first[msg] = fmt.Sprintf(format, v...)
	}
}

func (h *logCount) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCount) WithGroup(string) slog.Handler      { return h }

// summary lists the messages, most frequent first, with their counts and
// first errors.
func (h *logCount) summary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.n) == 0 {
		return "none"
	}
	msgs := slices.SortedFunc(maps.Keys(h.n), func(a, b string) int { return h.n[b] - h.n[a] })
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "\n  %5d x %q", h.n[m], m)
		if e := h.first[m]; e != "" {
			fmt.Fprintf(&b, " (first: %s)", e)
		}
	}
	return b.String()
}
