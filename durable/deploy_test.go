package durable_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus("f", backend.StatusWaiting)

	e.start(broken)
	if err := approve.Send(ctx, e.client, "f", "ann"); err != nil {
		t.Fatal(err)
	}
	info := e.waitStatus("f", backend.StatusParked)
	if info.Failure == nil || info.Failure.Kind != backend.KindNondeterminism {
		t.Fatalf("parked with %+v, want a non-determinism failure", info.Failure)
	}
	for _, want := range []string{"step 2", "- expected (history): activity b (step 2)", "+ actual   (code):    issued activity c (step 2)"} {
		if !strings.Contains(info.Failure.Details, want) {
			t.Errorf("diff lacks %q:\n%s", want, info.Failure.Details)
		}
	}
	hist, _ := e.client.History(ctx, "f")
	if n := len(hist); n != 5 {
		t.Errorf("parking changed history: %d events, want 5", n)
	}
	// A parked run with a message in its inbox stays parked: news does
	// not make the worker replay it again and again.
	time.Sleep(50 * time.Millisecond)
	if again, _ := e.client.Describe(ctx, "f"); again.Version != info.Version {
		t.Errorf("parked run was written %d more times", again.Version-info.Version)
	}

	// Deploying code that replays cleanly un-parks the run; the signal
	// sent meanwhile was kept.
	e.start(v1)
	if got, err := run.Result(ctx); err != nil || got != "b(a(x)) approved by ann" {
		t.Fatalf("result = %q, %v", got, err)
	}
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
		if err := approve.Send(ctx, e.client, id, "bo"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := old.Result(ctx); err != nil || got != "b(a(x)) approved by bo" {
		t.Errorf("old run = %q, %v", got, err)
	}
	if got, err := young.Result(ctx); err != nil || got != "c(a(x)) approved by bo" {
		t.Errorf("new run = %q, %v", got, err)
	}
	hist, _ := e.client.History(ctx, "new")
	found := false
	for _, ev := range hist {
		found = found || (ev.Type == backend.EventVersion && ev.Name == "c-instead-of-b" && ev.Version == 1)
	}
	if !found {
		t.Error("new run did not record its version")
	}

	// Dropping support for the default version parks the runs that use it.
	v3 := flow(func(ctx durable.Context) []*durable.Activity[string, string] {
		durable.Version(ctx, "c-instead-of-b", 1, 1)
		return []*durable.Activity[string, string]{a, c}
	})
	e.start(v1)
	if _, err := v1.Start(ctx, e.client, "stale", "x"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("stale", backend.StatusWaiting)
	e.start(v3)
	if err := approve.Send(ctx, e.client, "stale", "cy"); err != nil {
		t.Fatal(err)
	}
	info := e.waitStatus("stale", backend.StatusParked)
	if info.Failure == nil || info.Failure.Kind != backend.KindNondeterminism || !strings.Contains(info.Failure.Message, "supports versions 1 to 1") {
		t.Errorf("failure = %+v", info.Failure)
	}
}

func TestUnregisteredWorkflowParks(t *testing.T) {
	wf := durable.NewWorkflow("late", func(ctx durable.Context, s string) (string, error) { return s + "!", nil })
	e := newEnv(t) // knows no workflows
	ctx := ctxT(t)
	run, err := wf.Start(ctx, e.client, "l", "hi")
	if err != nil {
		t.Fatal(err)
	}
	info := e.waitStatus("l", backend.StatusParked)
	if info.Failure == nil || info.Failure.Kind != backend.KindUnregistered {
		t.Fatalf("failure = %+v", info.Failure)
	}
	e.start(wf)
	if got, err := run.Result(ctx); err != nil || got != "hi!" {
		t.Fatalf("result = %q, %v", got, err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus("r", backend.StatusWaiting)
	if err := e.client.Resume(ctx, "r"); !errors.Is(err, durable.ErrNotParked) {
		t.Errorf("resume a waiting run: %v, want ErrNotParked", err)
	}
	e.start(broken)
	if err := approve.Send(ctx, e.client, "r", "ann"); err != nil {
		t.Fatal(err)
	}
	parked := e.waitStatus("r", backend.StatusParked)

	// Still broken: tried again, parked again.
	if err := e.client.Resume(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ := e.client.Describe(ctx, "r")
		if info.Status == backend.StatusParked && info.Version > parked.Version {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resumed run was not tried again: %+v", info)
		}
		time.Sleep(2 * time.Millisecond)
	}

	// The resume request was answered: it left the inbox, so news for
	// the run does not make a worker try it again; the signal stays.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		inbox, err := e.store.ReadInbox(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		if len(inbox) == 1 {
			if ev, _ := backend.DecodeEvent(inbox[0].Event, nil); ev.Type == backend.EventSignalReceived {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("inbox has %d entries after the run parked again, want the approval only", len(inbox))
		}
	}

	// A worker with fixed code takes the run up (when it starts, or when
	// asked to).
	e.start(v1)
	if err := e.client.Resume(ctx, "r"); err != nil && !errors.Is(err, durable.ErrNotParked) {
		t.Fatal(err)
	}
	if got, err := run.Result(ctx); err != nil || got != "b(a(x)) approved by ann" {
		t.Fatalf("result = %q, %v", got, err)
	}
	if err := e.client.Resume(ctx, "r"); !errors.Is(err, durable.ErrNotParked) {
		t.Errorf("resume a completed run: %v, want ErrNotParked", err)
	}
	hist, _ := e.client.History(ctx, "r")
	for _, ev := range hist {
		if ev.Type == backend.EventResumeRequested {
			t.Errorf("a resume request was written to history: %+v", ev)
		}
	}
}
