package crashtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/crashtest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// The crash tests of an agent run: a worker process running the clerk
// agent (see crashtest.AgentChild) is killed with SIGKILL inside a model
// call, in the middle of streaming the final answer, inside a tool call,
// while the run waits for an approval, while it waits on a durable timer,
// and after each of its commits; a new worker process finishes the run. Each time the result must equal that of an
// uninterrupted run, every completed model call and tool call must not
// run again, side effects of tools that honour their idempotency key must
// happen once, and the history must replay against the agent's code.

const clerkRun = "clerk-1"

// clerkTurns is the number of model calls of a clerk run.
const clerkTurns = 4

// agentWorld is a Redis server with an agent runtime on it, in the test
// process, where the clerk agent is registered but never run.
type agentWorld struct {
	t     *testing.T
	srv   *redistest.Server
	rdb   *goredis.Client
	rt    *agent.Runtime
	clerk *agent.Agent
}

func newAgentWorld(t *testing.T) *agentWorld {
	t.Helper()
	srv := redistest.Start(t)
	store, err := redis.Open(srv.URL())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	w := &agentWorld{t: t, srv: srv, rdb: srv.Client(),
		rt: agent.NewRuntime(store, agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})}
	w.clerk = crashtest.Clerk(w.rdb)
	require.NoError(t, w.rt.Register(w.clerk))
	return w
}

// worker starts a worker process of the clerk agent.
func (w *agentWorld) worker(name string, env ...string) *child {
	w.t.Helper()
	vars := []string{crashtest.EnvAgent + "=1"}
	for _, v := range env {
		if v != "" {
			vars = append(vars, v)
		}
	}
	return startChild(w.t, name, w.srv.URL(), vars...)
}

// start starts the clerk run.
func (w *agentWorld) start() {
	w.t.Helper()
	_, err := w.rt.Start(context.Background(), w.clerk, clerkRun, agent.Input{Message: crashtest.ClerkMessage})
	require.NoError(w.t, err)
}

// approveWhenAsked approves the refund, from the test process, as soon as
// the run asks for it.
func (w *agentWorld) approveWhenAsked() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w.t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			reqs, _ := w.rt.Pending(ctx, agent.PendingFilter{RunID: clerkRun})
			for _, r := range reqs {
				if r.Tool == "refund" && w.rt.Decide(ctx, clerkRun, agent.Decision{CallID: r.CallID, Approved: true, By: "alice", Reason: "refund ok"}) == nil {
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
}

// describe returns the run's record.
func (w *agentWorld) describe() backend.RunInfo {
	w.t.Helper()
	info, err := w.rt.Run(clerkRun).Describe(context.Background())
	require.NoError(w.t, err)
	return info
}

// result waits for the run's result.
func (w *agentWorld) result() agent.RunResult {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := w.rt.Run(clerkRun).Result(ctx)
	if err != nil {
		info, _ := w.rt.Run(clerkRun).Describe(context.Background())
		w.t.Fatalf("result: %v (run %+v)", err, info)
	}
	return res
}

// history returns the run's history.
func (w *agentWorld) history() []backend.Event {
	w.t.Helper()
	h, err := w.rt.Run(clerkRun).History(context.Background())
	require.NoError(w.t, err)
	return h
}

// stoppedOrEnded waits until the worker c has stopped where it was told
// to (true) or the run has ended without it stopping (false).
func (w *agentWorld) stoppedOrEnded(c *child) bool {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var ended time.Time
	for {
		if slices.Contains(c.Output(), crashtest.Stopped) {
			return true
		}
		switch {
		case !ended.IsZero() && time.Since(ended) > 500*time.Millisecond:
			// The run ended and the worker did not stop after its
			// last commit.
			return false
		case ended.IsZero() && w.describe().Status.Terminal():
			ended = time.Now()
		case time.Now().After(deadline):
			w.t.Fatalf("%s neither stopped nor finished the run; it printed %q", c.Name(), c.Output())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expect says what a crash cut off. Steps are named "model N" (the model
// call of turn N) or by tool: "charge", "notify", "refund".
type expect struct {
	// cutOff is the step the kill cut off after it had begun its work:
	// it must have run twice, the second time as a retry after a lost
	// attempt.
	cutOff string
	// mayRunTwice are steps that may have been running when the worker
	// died (a tool called in parallel with the one the worker stopped
	// in): if they ran twice, history has a lost attempt.
	mayRunTwice []string
	// lostUnstarted allows lost attempts that never reached their
	// effect, in any step: the worker died right after journaling the
	// attempt's start.
	lostUnstarted bool
}

// check compares the run's result with an uninterrupted run's, counts
// what happened outside the worker processes, and replays the history.
//
// Every execution of a step beyond the first must show in history as an
// attempt lost with its worker (never silently), and there is at most one
// of those; a lost attempt may also not have begun its work (the worker
// died between journaling its start and starting it). Charge and refund,
// which honour their idempotency key, have their effect exactly once; the
// retry of a lost attempt uses the same key.
func (w *agentWorld) check(got, want agent.RunResult, e expect) {
	t := w.t
	t.Helper()
	assert.Equal(t, want, got, "result differs from an uninterrupted run's")
	history := w.history()
	assert.NoError(t, durable.ReplayHistory(w.rt.Workflow(w.clerk), history), "the history does not replay against the agent's code")
	lost := lostAttempts(t, history)

	ctx := context.Background()
	model := w.rdb.HGetAll(ctx, crashtest.ModelCallsKey).Val()
	runs := w.rdb.HGetAll(ctx, crashtest.ToolRunsKey).Val()
	keys := w.rdb.HGetAll(ctx, crashtest.ToolKeysKey).Val()
	effects := w.rdb.HGetAll(ctx, crashtest.ToolEffectsKey).Val()
	ran := map[string]int{}
	for turn, n := range model {
		ran["model "+turn], _ = strconv.Atoi(n)
	}
	for tool, n := range runs {
		ran[tool], _ = strconv.Atoi(n)
	}
	steps := []string{"charge", "notify", "refund"}
	for turn := range clerkTurns {
		steps = append(steps, fmt.Sprintf("model %d", turn))
	}
	assert.Len(t, ran, len(steps), "steps run, want %v", steps)
	for _, step := range steps {
		n, l := ran[step], lost[step]
		switch {
		case step == e.cutOff:
			if n != 2 || l != 1 {
				t.Errorf("%s, cut off, ran %d times with %d lost attempts in history; want twice, one lost", step, n, l)
			} else {
				t.Logf("%s, cut off by the kill, ran twice: the lost attempt and its retry (expected)", step)
			}
		case n < 1 || n > 1+l || l > 1:
			t.Errorf("%s ran %d times with %d lost attempts in history; want once, or twice after one lost attempt", step, n, l)
		case n == 2 && !slices.Contains(e.mayRunTwice, step):
			t.Errorf("%s ran twice; want once", step)
		case n == 2:
			t.Logf("%s, in flight when the worker died, ran twice: the lost attempt and its retry", step)
		case l == 1 && !e.lostUnstarted && !slices.Contains(e.mayRunTwice, step):
			t.Errorf("%s has a lost attempt in history; want none", step)
		case l == 1:
			t.Logf("%s has a lost attempt that died before its effect (the worker died after journaling its start): it ran once", step)
		}
	}
	for _, tool := range []string{"charge", "notify", "refund"} {
		want := 1
		if tool == "notify" {
			// It does not honour its idempotency key.
			want = ran[tool]
		}
		n, _ := strconv.Atoi(effects[tool])
		assert.Equal(t, want, n, "times %s had its effect", tool)
	}
	assert.Len(t, keys, 3, "idempotency keys used, want one per tool call")
	for key, n := range keys {
		tool, _, _ := strings.Cut(key, " ")
		assert.Equal(t, strconv.Itoa(ran[tool]), n, "times %s ran with key %q, want every time it ran", tool, key)
	}
}

// lostAttempts counts the attempts lost with their worker in a clerk
// history, by step name ("model N" or the tool's name).
func lostAttempts(t *testing.T, history []backend.Event) map[string]int {
	t.Helper()
	names := map[int]string{}
	turn := 0
	lost := map[string]int{}
	for _, e := range history {
		switch {
		case e.Type == backend.EventActivityScheduled && e.Name == "model:"+crashtest.ClerkName:
			names[e.Step] = fmt.Sprintf("model %d", turn)
			turn++
		case e.Type == backend.EventActivityScheduled:
			names[e.Step] = strings.TrimPrefix(e.Name, "tool:"+crashtest.ClerkName+"/")
		case (e.Type == backend.EventActivityAttemptFailed || e.Type == backend.EventActivityFailed) &&
			e.Failure != nil && e.Failure.Kind == backend.KindLost:
			name, ok := names[e.Step]
			assert.True(t, ok, "lost attempt of step %d, which was never scheduled", e.Step)
			lost[name]++
		}
	}
	return lost
}

// commits counts the commits a worker reported.
func commits(c *child) int {
	n := 0
	for _, l := range c.Output() {
		if strings.HasPrefix(l, crashtest.Commit+" ") {
			n++
		}
	}
	return n
}

// lastEvents returns what a worker last said it commits.
func lastEvents(c *child) string {
	last := ""
	for _, l := range c.Output() {
		if strings.HasPrefix(l, crashtest.Events+" ") {
			last = l
		}
	}
	return last
}

// The result and commit count of an uninterrupted clerk run, made once
// for all the tests.
var clean struct {
	sync.Mutex
	done    bool
	result  agent.RunResult
	commits int
}

// cleanClerkRun runs the clerk once without crashing, the first time it
// is called, and returns its result and the number of commits its worker
// made.
func cleanClerkRun(t *testing.T) (agent.RunResult, int) {
	t.Helper()
	clean.Lock()
	defer clean.Unlock()
	if clean.done {
		return clean.result, clean.commits
	}
	w := newAgentWorld(t)
	c := w.worker("clean")
	w.start()
	w.approveWhenAsked()
	res := w.result()
	require.Equal(t, clerkTurns, res.Turns, "clean run: %+v", res)
	require.True(t, strings.HasPrefix(res.Text, "done; "), "clean run: %+v", res)
	w.check(res, res, expect{})
	if t.Failed() {
		t.FailNow()
	}
	c.Kill()
	t.Logf("an uninterrupted clerk run answers %q in %d commits:", res.Text, commits(c))
	for _, l := range c.Output() {
		if strings.HasPrefix(l, crashtest.Events+" ") {
			t.Log("  " + l)
		}
	}
	clean.done, clean.result, clean.commits = true, res, commits(c)
	return clean.result, clean.commits
}

// killClerkAndTakeOver starts the clerk run in a worker that stops where env
// says, waits until it is there, kills it with SIGKILL, and lets a new
// worker process finish the run.
func killClerkAndTakeOver(t *testing.T, env string, stopped string) (*agentWorld, agent.RunResult) {
	t.Helper()
	w := newAgentWorld(t)
	doomed := w.worker("doomed", env)
	w.start()
	w.approveWhenAsked()
	doomed.WaitFor(stopped)
	doomed.Kill()
	w.worker("heir")
	return w, w.result()
}

// TestAgentKillDuringModelCall kills the worker inside the model call of
// each turn: the call cut off is made again by the new worker (so twice in
// all, which the test expects), no other model call is made again, and no
// tool runs again.
func TestAgentKillDuringModelCall(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills a worker process with SIGKILL in each model call and waits for its lease to expire; run without -short")
	}
	want, _ := cleanClerkRun(t)
	for turn := range clerkTurns {
		t.Run(fmt.Sprintf("turn_%d", turn), func(t *testing.T) {
			w, got := killClerkAndTakeOver(t, fmt.Sprintf("%s=%d", crashtest.EnvStopInModel, turn),
				fmt.Sprintf("%s %d", crashtest.InModel, turn))
			w.check(got, want, expect{cutOff: fmt.Sprintf("model %d", turn)})
		})
	}
}

// TestAgentKillDuringToolCall kills the worker inside each tool call,
// after its side effect and before it returns: the new worker runs it
// again with the same idempotency key, so charge and refund, which honour
// the key, have their effect once, and notify, which does not, twice
// (never silently: history has the lost attempt).
func TestAgentKillDuringToolCall(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills a worker process with SIGKILL in each tool call and waits for its lease to expire; run without -short")
	}
	want, _ := cleanClerkRun(t)
	for _, tool := range []string{"charge", "notify", "refund"} {
		t.Run(tool, func(t *testing.T) {
			w, got := killClerkAndTakeOver(t, crashtest.EnvStopInTool+"="+tool, crashtest.Stopped)
			e := expect{cutOff: tool}
			switch tool {
			case "charge":
				e.mayRunTwice = []string{"notify"} // called in parallel
			case "notify":
				e.mayRunTwice = []string{"charge"}
			}
			w.check(got, want, e)
		})
	}
}

// TestAgentKillThreeTimesInOneTool kills three workers in a row inside
// charge, each after the tool's effect: three lost attempts, as many as a
// tool's DefaultToolAttempts. Lost attempts are not failures, so the model
// never reads that charge failed (and so never calls it again under a new
// call id): the run ends as an uninterrupted one, charge ran four times
// with one idempotency key and had its effect once.
func TestAgentKillThreeTimesInOneTool(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills three worker processes with SIGKILL in one tool call and waits for their leases to expire; run without -short")
	}
	const kills = 3
	want, _ := cleanClerkRun(t)
	w := newAgentWorld(t)
	w.start()
	w.approveWhenAsked()
	for i := range kills {
		doomed := w.worker(fmt.Sprintf("doomed-%d", i), crashtest.EnvStopInTool+"=charge")
		doomed.WaitFor(crashtest.Stopped)
		doomed.Kill()
	}
	w.worker("heir")
	got := w.result()
	assert.Equal(t, want, got, "result differs from an uninterrupted run's")
	history := w.history()
	assert.NoError(t, durable.ReplayHistory(w.rt.Workflow(w.clerk), history), "the history does not replay against the agent's code")
	assert.Equal(t, kills, lostAttempts(t, history)["charge"], "lost attempts of charge in history")
	ctx := context.Background()
	runs, _ := strconv.Atoi(w.rdb.HGet(ctx, crashtest.ToolRunsKey, "charge").Val())
	effects, _ := strconv.Atoi(w.rdb.HGet(ctx, crashtest.ToolEffectsKey, "charge").Val())
	assert.Equal(t, kills+1, runs, "times charge ran")
	assert.Equal(t, 1, effects, "times charge had its effect")
	keys := 0
	for key := range w.rdb.HGetAll(ctx, crashtest.ToolKeysKey).Val() {
		if strings.HasPrefix(key, "charge ") {
			keys++
		}
	}
	assert.Equal(t, 1, keys, "idempotency keys charge ran with")
}

// TestAgentKillWhileAwaitingApproval kills the worker while the run waits
// for the refund's approval, approves it from the test process while no
// worker runs, then starts a new worker: the run finishes, the refund ran
// once, and history records who approved it.
func TestAgentKillWhileAwaitingApproval(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills a worker process with SIGKILL while its run awaits approval; run without -short")
	}
	want, _ := cleanClerkRun(t)
	w := newAgentWorld(t)
	doomed := w.worker("doomed")
	w.start()
	deadline := time.Now().Add(20 * time.Second)
	for w.describe().Status != backend.StatusAwaitingApproval {
		if time.Now().After(deadline) {
			t.Fatalf("the run does not wait for approval: %+v", w.describe())
		}
		time.Sleep(5 * time.Millisecond)
	}
	doomed.Kill()

	ctx := context.Background()
	reqs, err := w.rt.Pending(ctx, agent.PendingFilter{RunID: clerkRun})
	require.NoError(t, err)
	require.Len(t, reqs, 1, "pending requests, want the refund's approval")
	require.Equal(t, "refund", reqs[0].Tool, "pending request %+v, want the refund's approval", reqs[0])
	require.Equal(t, agent.KindApproval, reqs[0].Kind, "pending request %+v, want the refund's approval", reqs[0])
	require.NoError(t, w.rt.Decide(ctx, clerkRun, agent.Decision{CallID: reqs[0].CallID, Approved: true, By: "alice", Reason: "refund ok"}))
	require.Empty(t, w.rdb.HGet(ctx, crashtest.ToolRunsKey, "refund").Val(), "times the refund ran before any worker took the approval")
	require.Equal(t, backend.StatusAwaitingApproval, w.describe().Status, "with no worker, the run left awaiting approval")
	w.worker("heir")
	got := w.result()
	w.check(got, want, expect{})

	// History records the decision and who sent it (the names are the
	// agent package's records).
	decided := 0
	for _, e := range w.history() {
		if e.Type == backend.EventSignalReceived {
			assert.Equal(t, "alice", e.Sender, "signal %s: its sender", e.Name)
		}
		if e.Type == backend.EventSideEffect && e.Name == "approval_decided" {
			decided++
			var rec struct {
				Approved bool   `json:"approved"`
				By       string `json:"by"`
			}
			assert.NoError(t, json.Unmarshal(e.Payload, &rec), "approval recorded as %s", e.Payload)
			assert.True(t, rec.Approved, "approval recorded as %s, want approved", e.Payload)
			assert.Equal(t, "alice", rec.By, "approval recorded as %s, want by alice", e.Payload)
		}
	}
	assert.Equal(t, 1, decided, "approval decisions in history")
}

// TestAgentKillDuringDurableWait kills the worker right after it started
// the durable timer of the wait tool; a new worker, started before the
// timer is due or after, finishes the run after the wait, with nothing run
// twice.
func TestAgentKillDuringDurableWait(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills a worker process with SIGKILL during a durable timer and waits for its lease to expire; run without -short")
	}
	want, _ := cleanClerkRun(t)
	for _, late := range []bool{false, true} {
		t.Run(map[bool]string{false: "heir_before_due", true: "heir_after_due"}[late], func(t *testing.T) {
			w := newAgentWorld(t)
			doomed := w.worker("doomed", crashtest.EnvStopAfterTimer+"=1")
			w.start()
			w.approveWhenAsked()
			doomed.WaitFor(crashtest.Stopped)
			info := w.describe()
			t.Logf("killed while the run is %s (%s)", info.Status, info.Waiting)
			assert.Equal(t, backend.StatusWaiting, info.Status, "run status when killed")
			doomed.Kill()
			if late {
				// No worker runs when the timer is due.
				time.Sleep(time.Until(timerDue(t, w.history())) + 100*time.Millisecond)
			}
			w.worker("heir")
			got := w.result()
			w.check(got, want, expect{})

			// The timer fired once, not before its time.
			due := timerDue(t, w.history())
			fired := 0
			for _, e := range w.history() {
				if e.Type == backend.EventTimerFired {
					fired++
					assert.False(t, e.Time.Before(due), "the timer fired at %v, before its time %v", e.Time, due)
				}
			}
			assert.Equal(t, 1, fired, "timers fired")
		})
	}
}

// timerDue returns when the timer of a clerk history is due.
func timerDue(t *testing.T, history []backend.Event) time.Time {
	t.Helper()
	for _, e := range history {
		if e.Type == backend.EventTimerStarted {
			return e.FireAt
		}
	}
	t.Fatal("no timer in history")
	return time.Time{}
}

// TestAgentKillAtEveryCommit kills the worker with SIGKILL right after
// each commit of a clerk run (each journal boundary: model calls and tool
// calls started and completed, the timer set and fired, the approval
// asked and given) and lets a new worker finish the run: same result, and
// every model call and tool call made exactly once.
func TestAgentKillAtEveryCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills a worker process with SIGKILL at every journal boundary of a clerk run (about 1.5 s each); run without -short")
	}
	want, n := cleanClerkRun(t)
	for k := 1; k <= n; k++ {
		t.Run(fmt.Sprintf("after_commit_%d", k), func(t *testing.T) {
			w := newAgentWorld(t)
			doomed := w.worker("doomed", fmt.Sprintf("%s=%d", crashtest.EnvStopAfterCommit, k))
			w.start()
			w.approveWhenAsked()
			if w.stoppedOrEnded(doomed) {
				t.Logf("killed after %s", lastEvents(doomed))
			} else {
				// Commits batch what is ready together, so a run may
				// take fewer commits than the clean one did.
				t.Logf("the run ended in %d commits, before commit %d", commits(doomed), k)
			}
			doomed.Kill()
			w.worker("heir")
			// charge and notify run in parallel: the one still running
			// after a commit that stops the worker is cut off.
			w.check(w.result(), want, expect{mayRunTwice: []string{"charge", "notify"}, lostUnstarted: true})
		})
	}
}

// TestAgentKillWhileStreaming kills the worker in the middle of streaming
// the final answer, once its first words are in the run's live feed: the
// new worker streams the answer again as a second attempt and marks the
// first abandoned, so that a reader (agent.LiveText) shows the answer
// once.
func TestAgentKillWhileStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills a worker process with SIGKILL while it streams and waits for its lease to expire; run without -short")
	}
	want, _ := cleanClerkRun(t)
	w := newAgentWorld(t)
	doomed := w.worker("doomed", fmt.Sprintf("%s=%d", crashtest.EnvStallStream, clerkTurns-1))
	w.start()
	w.approveWhenAsked()
	doomed.WaitFor(crashtest.Streaming)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	step, partial := 0, ""
	for after := ""; step == 0; {
		events, err := w.rt.LiveEvents(ctx, clerkRun, after)
		require.NoError(t, err, "read the live feed")
		for _, e := range events {
			after = e.ID
			if e.Type == agent.LiveTextDelta && e.Attempt == 1 {
				step, partial = e.Step, e.Text
			}
		}
	}
	doomed.Kill()
	w.worker("heir")
	got := w.result()
	w.check(got, want, expect{cutOff: fmt.Sprintf("model %d", clerkTurns-1)})

	var tr agent.LiveText
	abandoned := false
	err := w.rt.Follow(ctx, clerkRun, "", func(e agent.LiveEvent) error {
		tr.Add(e)
		abandoned = abandoned || e.Type == agent.LiveAttemptAbandoned && e.Step == step && e.Attempt == 1
		return nil
	})
	require.NoError(t, err, "follow the live feed")
	assert.True(t, abandoned, "no attempt_abandoned event for attempt 1 of step %d, whose text %q the feed showed", step, partial)
	assert.Equal(t, got.Text, tr.Text(), "the live feed's transcript, want the answer once")
}
