package crashtest_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/crashtest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// The crash tests of memory: a worker process running the memo agent (see
// crashtest.MemoChild) is killed with SIGKILL inside the summary call of a
// compaction, and right after its remember tool stored a memory; a new
// worker process finishes the run. There must be one compaction and one
// memory, and the run's answer must be that of an uninterrupted run.

const memoRun = "memo-1"

// memoAnswer is the answer of an uninterrupted memo run.
const memoAnswer = `noted ({"remembered":"` // the key follows

// killMemoAndTakeOver starts a memo run in a worker that stops where env
// says, kills it with SIGKILL once it has stopped, and lets a new worker
// process finish the run. It returns the run's result and history.
func killMemoAndTakeOver(t *testing.T, env string) (*redistest.Server, agent.RunResult, []backend.Event) {
	t.Helper()
	srv := redistest.Start(t)
	store, err := redis.Open(srv.URL())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	rt := agent.NewRuntime(store, agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	memo := crashtest.Memo(srv.Client())
	require.NoError(t, rt.Register(memo))

	doomed := startChild(t, "doomed", srv.URL(), crashtest.EnvMemo+"=1", env)
	run, err := rt.Start(context.Background(), memo, memoRun,
		agent.Input{History: crashtest.MemoHistory, Message: crashtest.MemoMessage, User: crashtest.MemoUser})
	require.NoError(t, err)
	doomed.WaitFor(crashtest.Stopped)
	doomed.Kill()
	startChild(t, "heir", srv.URL(), crashtest.EnvMemo+"=1")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := run.Result(ctx)
	require.NoError(t, err)
	history, err := run.History(ctx)
	require.NoError(t, err)
	assert.NoError(t, durable.ReplayHistory(rt.Workflow(memo), history), "replay")
	return srv, res, history
}

// checkMemo checks what every memo run must end with: one compaction, one
// summary, one memory, the answer of an uninterrupted run.
func checkMemo(t *testing.T, srv *redistest.Server, res agent.RunResult, history []backend.Event) {
	t.Helper()
	assert.True(t, strings.HasPrefix(res.Text, memoAnswer), "answer %q", res.Text)
	assert.Contains(t, res.Text, "summary seen: true")
	var compactions, summaries int
	for _, e := range history {
		switch {
		case e.Type == backend.EventSideEffect && e.Name == "compaction":
			compactions++
		case e.Type == backend.EventActivityCompleted && e.Name == "summary:"+crashtest.MemoName:
			summaries++
		}
	}
	assert.Equal(t, 1, compactions, "compactions recorded")
	assert.Equal(t, 1, summaries, "summaries journaled")
	items, err := crashtest.MemoMemories(srv.Client()).List(context.Background(), "user/"+crashtest.MemoUser, "", 0)
	require.NoError(t, err)
	require.Len(t, items, 1, "memories")
	assert.Equal(t, crashtest.MemoFact, items[0].Text)
}

// TestMemoKillDuringCompaction kills the worker inside the summary call of
// a compaction: the new worker makes the cut-off call again (so twice in
// all), and the run has one compaction and one summary.
func TestMemoKillDuringCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills a worker process with SIGKILL during a compaction and waits for its lease to expire; run without -short")
	}
	srv, res, history := killMemoAndTakeOver(t, crashtest.EnvStopInSummary+"=1")
	checkMemo(t, srv, res, history)
	calls, err := srv.Client().Get(context.Background(), crashtest.SummaryCallsKey).Int()
	require.NoError(t, err)
	assert.Equal(t, 2, calls, "summary calls: the one cut off and its retry")
}

// TestMemoKillAfterMemoryWrite kills the worker inside the remember tool,
// right after the memory was stored: the new worker runs the tool again,
// and the memory is stored once.
func TestMemoKillAfterMemoryWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills a worker process with SIGKILL during a memory write and waits for its lease to expire; run without -short")
	}
	srv, res, history := killMemoAndTakeOver(t, crashtest.EnvStopAfterRemember+"=1")
	checkMemo(t, srv, res, history)
	lost := 0
	for _, e := range history {
		if e.Type == backend.EventActivityAttemptFailed && e.Name == "tool:"+crashtest.MemoName+"/"+agent.RememberTool {
			lost++
		}
	}
	assert.Equal(t, 1, lost, "the cut-off attempt is in history")
}
