package durable_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
)

func echo(name string) *durable.Activity[string, string] {
	return durable.NewActivity(name, func(ctx context.Context, in string) (string, error) { return name + "(" + in + ")", nil })
}

var a, b, c = echo("a"), echo("b"), echo("c")

// flow runs the given activities in order, then waits for approval.
func flow(steps func(ctx durable.Context) []*durable.Activity[string, string]) *durable.Workflow[string, string] {
	return durable.NewWorkflow("flow", func(ctx durable.Context, in string) (string, error) {
		for _, act := range steps(ctx) {
			var err error
			if in, err = durable.Execute(ctx, act, in); err != nil {
				return "", err
			}
		}
		who, err := approve.Receive(ctx)
		return in + " approved by " + who, err
	})
}

func fixed(acts ...*durable.Activity[string, string]) func(durable.Context) []*durable.Activity[string, string] {
	return func(durable.Context) []*durable.Activity[string, string] { return acts }
}

func TestNondeterminismParksUntilFixed(t *testing.T) {
	v1 := flow(fixed(a, b))
	broken := flow(fixed(a, c)) // step 2 changed without a Version guard
	e := newEnv(t, v1)
	ctx := ctxT(t)
	run, err := v1.Start(ctx, e.client, "f", "x")
	require.NoError(t, err)
	e.waitStatus("f", backend.StatusWaiting)

	e.start(broken)
	require.NoError(t, approve.Send(ctx, e.client, "f", "ann"))
	info := e.waitStatus("f", backend.StatusParked)
	require.NotNil(t, info.Failure, "parked without a failure, want a non-determinism failure")
	require.Equal(t, backend.KindNondeterminism, info.Failure.Kind, "parked with %+v", info.Failure)
	for _, want := range []string{"step 2", "- expected (history): activity b (step 2)", "+ actual   (code):    issued activity c (step 2)"} {
		assert.Contains(t, info.Failure.Details, want, "diff")
	}
	hist, _ := e.client.History(ctx, "f")
	assert.Len(t, hist, 5, "parking changed history")
	// A parked run with a message in its inbox stays parked: news does
	// not make the worker replay it again and again.
	time.Sleep(50 * time.Millisecond)
	again, _ := e.client.Describe(ctx, "f")
	assert.Equal(t, info.Version, again.Version, "the parked run's version: it was written again")

	// Deploying code that replays cleanly un-parks the run; the signal
	// sent meanwhile was kept.
	e.start(v1)
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "b(a(x)) approved by ann", got)
}

func TestVersionLetsOldAndNewRunsFinish(t *testing.T) {
	v1 := flow(fixed(a, b))
	v2 := flow(func(ctx durable.Context) []*durable.Activity[string, string] {
		if durable.Version(ctx, "c-instead-of-b", durable.DefaultVersion, 1) == 1 {
			return []*durable.Activity[string, string]{a, c}
		}
		return []*durable.Activity[string, string]{a, b}
	})
	e := newEnv(t, v1)
	ctx := ctxT(t)
	old, _ := v1.Start(ctx, e.client, "old", "x")
	e.waitStatus("old", backend.StatusWaiting)

	e.start(v2)
	young, _ := v2.Start(ctx, e.client, "new", "x")
	e.waitStatus("new", backend.StatusWaiting)
	for _, id := range []string{"old", "new"} {
		require.NoError(t, approve.Send(ctx, e.client, id, "bo"))
	}
	got, err := old.Result(ctx)
	assert.NoError(t, err, "old run")
	assert.Equal(t, "b(a(x)) approved by bo", got, "old run")
	got, err = young.Result(ctx)
	assert.NoError(t, err, "new run")
	assert.Equal(t, "c(a(x)) approved by bo", got, "new run")
	hist, _ := e.client.History(ctx, "new")
	found := false
	for _, ev := range hist {
		found = found || (ev.Type == backend.EventVersion && ev.Name == "c-instead-of-b" && ev.Version == 1)
	}
	assert.True(t, found, "new run did not record its version")

	// Dropping support for the default version parks the runs that use it.
	v3 := flow(func(ctx durable.Context) []*durable.Activity[string, string] {
		durable.Version(ctx, "c-instead-of-b", 1, 1)
		return []*durable.Activity[string, string]{a, c}
	})
	e.start(v1)
	_, err = v1.Start(ctx, e.client, "stale", "x")
	require.NoError(t, err)
	e.waitStatus("stale", backend.StatusWaiting)
	e.start(v3)
	require.NoError(t, approve.Send(ctx, e.client, "stale", "cy"))
	info := e.waitStatus("stale", backend.StatusParked)
	require.NotNil(t, info.Failure, "failure")
	assert.Equal(t, backend.KindNondeterminism, info.Failure.Kind, "failure %+v", info.Failure)
	assert.Contains(t, info.Failure.Message, "supports versions 1 to 1")
}

func TestUnregisteredWorkflowParks(t *testing.T) {
	wf := durable.NewWorkflow("late", func(ctx durable.Context, s string) (string, error) { return s + "!", nil })
	e := newEnv(t) // knows no workflows
	ctx := ctxT(t)
	run, err := wf.Start(ctx, e.client, "l", "hi")
	require.NoError(t, err)
	info := e.waitStatus("l", backend.StatusParked)
	require.NotNil(t, info.Failure, "failure")
	require.Equal(t, backend.KindUnregistered, info.Failure.Kind, "failure %+v", info.Failure)
	e.start(wf)
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hi!", got)
}

// TestResumeParkedRun: a parked run is tried again when asked, without a
// worker restart: it parks again while the code is still broken, and goes
// on once a worker that has fixed code is asked to.
func TestResumeParkedRun(t *testing.T) {
	v1 := flow(fixed(a, b))
	broken := flow(fixed(a, c))
	e := newEnv(t, v1)
	ctx := ctxT(t)
	run, err := v1.Start(ctx, e.client, "r", "x")
	require.NoError(t, err)
	e.waitStatus("r", backend.StatusWaiting)
	assert.ErrorIs(t, e.client.Resume(ctx, "r"), durable.ErrNotParked, "resume a waiting run")
	e.start(broken)
	require.NoError(t, approve.Send(ctx, e.client, "r", "ann"))
	parked := e.waitStatus("r", backend.StatusParked)

	// Still broken: tried again, parked again.
	require.NoError(t, e.client.Resume(ctx, "r"))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		info, _ := e.client.Describe(ctx, "r")
		assert.Equal(c, backend.StatusParked, info.Status, "the resumed run: %+v", info)
		assert.Greater(c, info.Version, parked.Version, "the resumed run was not tried again: %+v", info)
	}, 10*time.Second, 2*time.Millisecond)

	// The resume request was answered: it left the inbox, so news for
	// the run does not make a worker try it again; the signal stays.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		inbox, err := e.store.ReadInbox(ctx, "r")
		require.NoError(c, err)
		require.Len(c, inbox, 1, "inbox after the run parked again: want the approval only")
		ev, _ := backend.DecodeEvent(inbox[0].Event, nil)
		assert.Equal(c, backend.EventSignalReceived, ev.Type, "inbox after the run parked again: want the approval only")
	}, 10*time.Second, 2*time.Millisecond)

	// A worker with fixed code takes the run up (when it starts, or when
	// asked to).
	e.start(v1)
	if err := e.client.Resume(ctx, "r"); err != nil {
		// The starting worker may have taken the run up, and even
		// finished it, before Resume asked.
		require.ErrorIs(t, err, durable.ErrNotParked)
	}
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "b(a(x)) approved by ann", got)
	assert.ErrorIs(t, e.client.Resume(ctx, "r"), durable.ErrNotParked, "resume a completed run")
	hist, _ := e.client.History(ctx, "r")
	for _, ev := range hist {
		assert.NotEqual(t, backend.EventResumeRequested, ev.Type, "a resume request was written to history: %+v", ev)
	}
}

// endsOnSecondRead is a store whose run reads as parked once, then as it
// is: a run that a worker takes up and finishes while Resume asks.
type endsOnSecondRead struct {
	backend.Store
	reads atomic.Int32
}

func (s *endsOnSecondRead) GetRun(ctx context.Context, runID string) (backend.RunInfo, error) {
	info, err := s.Store.GetRun(ctx, runID)
	if s.reads.Add(1) == 1 {
		info.Status = backend.StatusParked
	}
	return info, err
}

// TestResumeRunThatEndsMeanwhile: Resume of a run that ends while it asks
// says the run is not parked (stress runs found it saying only that the
// run had ended, against Resume's contract).
func TestResumeRunThatEndsMeanwhile(t *testing.T) {
	wf := flow(fixed(a, b))
	e := newEnv(t, wf)
	ctx := ctxT(t)
	run, err := wf.Start(ctx, e.client, "r", "x")
	require.NoError(t, err)
	e.waitStatus("r", backend.StatusWaiting)
	require.NoError(t, approve.Send(ctx, e.client, "r", "ann"))
	_, err = run.Result(ctx)
	require.NoError(t, err)

	client := durable.NewClient(&endsOnSecondRead{Store: e.store}, durable.ClientOptions{})
	err = client.Resume(ctx, "r")
	assert.ErrorIs(t, err, durable.ErrNotParked)
	assert.ErrorIs(t, err, durable.ErrRunEnded)
}
