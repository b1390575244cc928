package evals_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/evals"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

var update = flag.Bool("update", false, "write the recorded histories in testdata")

// counted is a model that counts the calls it is given.
type counted struct {
	m     providers.Model
	calls atomic.Int64
}

func (c *counted) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	c.calls.Add(1)
	return c.m.Generate(ctx, req)
}

// shop is a refund agent: the model looks an order up, refunds it, and
// answers with final, in 3 model calls and 2 tool calls (steps 1 to 5:
// model, lookup, model, refund, model).
type shop struct {
	lookups, refunds atomic.Int64
}

func (s *shop) agent(t *testing.T, model providers.Model, withRefund bool) *agent.Agent {
	t.Helper()
	type lookupArgs struct {
		Order string `json:"order_id"`
		At    string `json:"at"`
	}
	type refundArgs struct {
		Order string `json:"order_id"`
	}
	lookup := tools.MustNew("lookup", "Find an order.", func(_ context.Context, in lookupArgs) (string, error) {
		s.lookups.Add(1)
		return "order " + in.Order + ": paid 20 EUR", nil
	})
	refund := tools.MustNew("refund", "Refund an order.", func(_ context.Context, in refundArgs) (string, error) {
		s.refunds.Add(1)
		return "refunded " + in.Order, nil
	})
	all := []*tools.Tool{lookup}
	if withRefund {
		all = append(all, refund)
	}
	set, err := tools.NewSet(all...)
	require.NoError(t, err)
	return &agent.Agent{Name: "shop", Instructions: "You refund orders.", Model: model, Tools: set}
}

// script is the model of the shop: the same calls, then final.
func script(final string) *counted {
	return &counted{m: scripted.New(
		providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
			{Name: "lookup", Arguments: `{"order_id":"A1","at":"2025-03-01T10:00:00Z"}`}}}},
		providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
			{Name: "refund", Arguments: `{"order_id":"A1"}`}}}},
		providers.Response{Message: providers.Message{Content: final}},
	)}
}

const (
	oldAnswer = "Order A1 is refunded."
	newAnswer = "Your 20 EUR for order A1 are on their way back."
)

// deployment is an agent on a fresh in-memory store with a worker that
// the test drains.
type deployment struct {
	t      *testing.T
	rt     *agent.Runtime
	worker *durable.Worker
}

func deploy(t *testing.T, a *agent.Agent) *deployment {
	t.Helper()
	rt := agent.NewRuntime(inmem.New(), agent.Options{Logger: quiet()})
	require.NoError(t, rt.Register(a))
	return &deployment{t: t, rt: rt, worker: rt.NewWorker(durable.WorkerOptions{Logger: quiet()})}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (d *deployment) drain() {
	d.t.Helper()
	require.NoError(d.t, d.worker.Drain(ctxT(d.t)))
}

// record runs the shop once with its original model and returns the
// run's history.
func record(t *testing.T, s *shop) []backend.Event {
	t.Helper()
	a := s.agent(t, script(oldAnswer), true)
	d := deploy(t, a)
	ctx := ctxT(t)
	run, err := d.rt.Start(ctx, a, "recorded", agent.Input{Message: "Refund my order A1.", User: "ann"})
	require.NoError(t, err)
	d.drain()
	res, err := run.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, oldAnswer, res.Text)
	history, err := run.History(ctx)
	require.NoError(t, err)
	return history
}

// TestReplayFromStep records a run of 3 model calls and 2 tool calls and
// re-runs it from each step with a changed model: the steps before are
// replayed from the journal, and only the calls at or after the step are
// made again.
func TestReplayFromStep(t *testing.T) {
	s := &shop{}
	recorded := record(t, s)
	for _, tc := range []struct {
		from          int
		models, tools int
		answer        string
	}{
		{from: 0, models: 3, tools: 2, answer: newAnswer},
		{from: 1, models: 3, tools: 2, answer: newAnswer},
		{from: 2, models: 2, tools: 2, answer: newAnswer},
		{from: 3, models: 2, tools: 1, answer: newAnswer},
		{from: 4, models: 1, tools: 1, answer: newAnswer},
		{from: 5, models: 1, tools: 0, answer: newAnswer},
		// Past the last step: every result comes from the journal, and
		// the answer is the recorded one.
		{from: 6, models: 0, tools: 0, answer: oldAnswer},
	} {
		t.Run(fmt.Sprintf("from %d", tc.from), func(t *testing.T) {
			s.lookups.Store(0)
			s.refunds.Store(0)
			model := script(newAnswer)
			d := deploy(t, s.agent(t, model, true))
			ctx := ctxT(t)
			seeded, err := evals.Seed(ctx, d.rt.Client(), "trial", recorded, tc.from)
			require.NoError(t, err)
			assert.Equal(t, max(tc.from, 1), seeded.From, "the first step run again")
			d.drain()
			info, err := evals.AwaitSeeded(ctx, d.rt.Client(), "trial")
			require.NoError(t, err)
			require.Equal(t, backend.StatusCompleted, info.Status)
			res, err := d.rt.Run("trial").Result(ctx)
			require.NoError(t, err)
			assert.Equal(t, tc.answer, res.Text)
			assert.Equal(t, int64(tc.models), model.calls.Load(), "model calls")
			assert.Equal(t, int64(tc.tools), s.lookups.Load()+s.refunds.Load(), "tool calls")
			assert.Equal(t, 3, res.Turns, "the replayed turns count")
			h, err := d.rt.Run("trial").History(ctx)
			require.NoError(t, err)
			// The seeded events are the recorded ones; the run has a
			// trace of its own.
			assert.Equal(t, recorded[0].Seed, h[0].Seed)
			assert.JSONEq(t, string(recorded[0].Payload), string(h[0].Payload))
			assert.True(t, slices.EqualFunc(recorded[1:seeded.Events], h[1:seeded.Events], func(a, b backend.Event) bool {
				return a.Type == b.Type && a.Step == b.Step && a.Name == b.Name && string(a.Payload) == string(b.Payload)
			}), "the seeded events are the recorded ones")
		})
	}
}

// TestReplayDiverges re-runs a recorded run from its last step with an
// agent that lost a tool the recorded model called: the replayed steps
// no longer match, and the run parks with the divergence.
func TestReplayDiverges(t *testing.T) {
	s := &shop{}
	recorded := record(t, s)
	model := script(newAnswer)
	d := deploy(t, s.agent(t, model, false))
	ctx := ctxT(t)
	_, err := evals.Seed(ctx, d.rt.Client(), "trial", recorded, 5)
	require.NoError(t, err)
	d.drain()
	info, err := evals.AwaitSeeded(ctx, d.rt.Client(), "trial")
	require.ErrorIs(t, err, durable.ErrNondeterminism)
	assert.Equal(t, backend.StatusParked, info.Status)
	assert.Contains(t, err.Error(), "activity tool:shop/refund (step 4)", "the recorded step")
	assert.Contains(t, info.Failure.Details, "activity model:shop (step 4)", "what the code did instead")
	assert.Zero(t, model.calls.Load(), "no model call")
	assert.Zero(t, s.refunds.Load()+s.lookups.Load()-2, "no tool call beyond the recording's")
}

// TestSeedCuts checks the seeding rule on a history of parallel tool
// calls: a cut never splits a step, and the run's end is never kept.
func TestSeedCuts(t *testing.T) {
	ev := func(typ backend.EventType, step int) backend.Event { return backend.Event{Type: typ, Step: step} }
	h := []backend.Event{
		ev(backend.EventRunStarted, 0),
		ev(backend.EventActivityScheduled, 1), ev(backend.EventActivityCompleted, 1),
		ev(backend.EventActivityScheduled, 2), ev(backend.EventActivityScheduled, 3),
		ev(backend.EventActivityCompleted, 3), ev(backend.EventActivityCompleted, 2),
		ev(backend.EventSignalReceived, 0),
		ev(backend.EventActivityScheduled, 4), ev(backend.EventActivityCompleted, 4),
		ev(backend.EventRunCompleted, 0),
	}
	for i := range h {
		h[i].Seq = int64(i + 1)
	}
	for from, want := range map[int]int{0: 1, 1: 1, 2: 3, 3: 3, 4: 8, 5: 10, 9: 10} {
		assert.Len(t, evals.Prefix(h, from), want, "from %d", from)
	}
}

// TestCaseFromHistoryFile makes a case of an exported history (regenerate
// it with -update) and re-runs it from its refund.
func TestCaseFromHistoryFile(t *testing.T) {
	path := filepath.Join("testdata", "refund.json")
	if *update {
		data, err := backend.MarshalHistory(record(t, &shop{}))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, data, 0o644))
	}
	c, err := evals.CaseFromHistoryFile(path, evals.RecordOptions{Volatile: []string{"at"}})
	require.NoError(t, err)
	assert.Equal(t, "refund", c.Name)
	assert.Equal(t, "Refund my order A1.", c.Message)
	assert.Equal(t, "ann", c.User)
	assert.Equal(t, oldAnswer, c.Expect.Text)
	require.NotNil(t, c.Expect.Trajectory)
	assert.Equal(t, evals.TrajectoryInOrder, c.Expect.Trajectory.Mode)
	assert.Equal(t, []evals.ExpectedCall{
		{Tool: "lookup", Args: map[string]evals.Matcher{"order_id": {Equal: json.RawMessage(`"A1"`)}, "at": {Any: true}}},
		{Tool: "refund", Args: map[string]evals.Matcher{"order_id": {Equal: json.RawMessage(`"A1"`)}}},
	}, c.Expect.Trajectory.Calls)
	require.NotNil(t, c.Replay)
	assert.Equal(t, "refund", c.Replay.RunID)

	s := &shop{}
	model := script(newAnswer)
	d := deploy(t, s.agent(t, model, true))
	ctx := ctxT(t)
	c.Replay.From = 4
	seeded, err := evals.SeedCase(ctx, d.rt.Client(), &c, "trial-1")
	require.NoError(t, err)
	assert.Equal(t, 4, seeded.From)
	d.drain()
	_, err = evals.AwaitSeeded(ctx, d.rt.Client(), "trial-1")
	require.NoError(t, err)
	res, err := d.rt.Run("trial-1").Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, newAnswer, res.Text)
	assert.Equal(t, int64(1), model.calls.Load())
	assert.Equal(t, int64(1), s.refunds.Load())
	assert.Zero(t, s.lookups.Load())

	_, err = evals.CaseFromHistoryFile(filepath.Join("testdata", "missing.json"), evals.RecordOptions{})
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestCasesFromRuns makes cases of the runs of a store, by agent.
func TestCasesFromRuns(t *testing.T) {
	s := &shop{}
	a := s.agent(t, script(oldAnswer), true)
	d := deploy(t, a)
	ctx := ctxT(t)
	for _, id := range []string{"r1", "r2"} {
		_, err := d.rt.Start(ctx, a, id, agent.Input{Message: "Refund my order A1."})
		require.NoError(t, err)
	}
	d.drain()
	cases, err := evals.CasesFromRuns(ctx, d.rt.Client(), backend.RunFilter{Workflow: "shop"}, evals.RecordOptions{})
	require.NoError(t, err)
	require.Len(t, cases, 2)
	for _, c := range cases {
		assert.Equal(t, oldAnswer, c.Expect.Text, c.Name)
		assert.Len(t, c.Expect.Trajectory.Calls, 2, c.Name)
		assert.Equal(t, c.Name, c.Replay.RunID)
	}
	one, err := evals.CasesFromRunIDs(ctx, d.rt.Client(), []string{"r2"}, evals.RecordOptions{})
	require.NoError(t, err)
	assert.Equal(t, "r2", one[0].Name)
	_, err = evals.CasesFromRunIDs(ctx, d.rt.Client(), []string{"nope"}, evals.RecordOptions{})
	assert.ErrorIs(t, err, backend.ErrRunNotFound)
}
