package evals

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
)

// What this file reads in an agent's history, as package agent writes it:
// the activities of model calls are named "model:<agent>", the user
// messages of a conversation are signals named "cairn.message", and each
// of its answers is a record named "reply".
const (
	modelActivityPrefix = "model:"
	messageSignal       = "cairn.message"
	replyRecord         = "reply"
)

// RecordOptions say how a recorded run becomes a case.
type RecordOptions struct {
	// Volatile names tool arguments whose value changes from run to run
	// (ids, times): the expected trajectory matches them with {"$any":
	// true} instead of their recorded value. Names are those of the
	// top-level fields of a call's arguments.
	Volatile []string
}

// CaseFromHistory makes a case of the recorded history of an agent run
// (history as Client.History returns it or `cairn history export` writes
// it, see LoadHistoryFile). name names the case and the recorded run
// (Replay.RunID).
//
// The case's input is the run's agent.Input: Message, History and User;
// for a conversation, its first Message and then the user messages the
// run received, in order, are the case's Turns. What the run did is what
// the case expects: its final answer (the last reply of a conversation)
// as Expect.Text, when the run gave one, and the tool calls its model
// asked for as an in_order Expect.Trajectory, each with all its recorded
// arguments compared as they were, except those opts names volatile.
// Replay holds the whole history, so that the case can be re-run from a
// step (Replay.From, see Seed). The case is tagged "recorded".
func CaseFromHistory(name string, history []backend.Event, opts RecordOptions) (Case, error) {
	if len(history) == 0 || history[0].Type != backend.EventRunStarted {
		return Case{}, fmt.Errorf("case %s: %w: history does not begin with %s", name, backend.ErrCorruptHistory, backend.EventRunStarted)
	}
	var in agent.Input
	if err := json.Unmarshal(history[0].Payload, &in); err != nil {
		return Case{}, fmt.Errorf("case %s: not the history of an agent run: input: %w", name, err)
	}
	c := Case{Name: name, History: in.History, User: in.User, Tags: []string{"recorded"}}
	if in.Conversation {
		if in.Message != "" {
			c.Turns = append(c.Turns, in.Message)
		}
	} else {
		c.Message = in.Message
	}
	var calls []ExpectedCall
	lastReply, ended := "", false
	for _, e := range history {
		switch {
		case e.Type == backend.EventSignalReceived && e.Name == messageSignal && in.Conversation:
			var m struct{ Text string }
			if err := json.Unmarshal(e.Payload, &m); err != nil {
				return Case{}, fmt.Errorf("case %s: message at position %d: %w", name, e.Seq, err)
			}
			if m.Text != "" {
				c.Turns = append(c.Turns, m.Text)
			}
		case e.Type == backend.EventActivityCompleted && strings.HasPrefix(e.Name, modelActivityPrefix):
			var resp providers.Response
			if err := json.Unmarshal(e.Payload, &resp); err != nil {
				return Case{}, fmt.Errorf("case %s: model response at position %d: %w", name, e.Seq, err)
			}
			for _, tc := range resp.Message.ToolCalls {
				calls = append(calls, expectedCall(tc, opts.Volatile))
			}
		case e.Type == backend.EventSideEffect && e.Name == replyRecord:
			var r struct{ Text, Error string }
			if err := json.Unmarshal(e.Payload, &r); err == nil && r.Error == "" {
				lastReply = r.Text
			}
		case e.Type == backend.EventRunCompleted:
			var res agent.RunResult
			if err := json.Unmarshal(e.Payload, &res); err != nil {
				return Case{}, fmt.Errorf("case %s: result: %w", name, err)
			}
			lastReply, ended = res.Text, true
		}
	}
	if in.Conversation || ended {
		c.Expect.Text = lastReply
	}
	if c.Message == "" && len(c.Turns) == 0 && len(c.History) == 0 {
		return Case{}, fmt.Errorf("case %s: the recorded run has no message", name)
	}
	if len(calls) > 0 {
		c.Expect.Trajectory = &Trajectory{Mode: TrajectoryInOrder, Calls: calls}
	}
	data, err := backend.MarshalHistory(history)
	if err != nil {
		return Case{}, fmt.Errorf("case %s: %w", name, err)
	}
	c.Replay = &Replay{RunID: name, History: data}
	return c, nil
}

// expectedCall is the expectation of a recorded tool call: its arguments
// as they were, volatile ones matched by presence only. Arguments that
// are not a JSON object are not compared.
func expectedCall(tc providers.ToolCall, volatile []string) ExpectedCall {
	call := ExpectedCall{Tool: tc.Name}
	var args map[string]json.RawMessage
	if json.Unmarshal([]byte(tc.Arguments), &args) != nil || len(args) == 0 {
		return call
	}
	call.Args = make(map[string]Matcher, len(args))
	for k, v := range args {
		if slices.Contains(volatile, k) {
			call.Args[k] = Matcher{Any: true}
		} else {
			call.Args[k] = Matcher{Equal: v}
		}
	}
	return call
}

// LoadHistoryFile reads a history written by `cairn history export`
// (backend.MarshalHistory), checking every event.
func LoadHistoryFile(path string) ([]backend.Event, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	history, err := backend.UnmarshalHistory(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return history, nil
}

// CaseFromHistoryFile is CaseFromHistory of the history in the file at
// path, named after the file (its base name without ".json").
func CaseFromHistoryFile(path string, opts RecordOptions) (Case, error) {
	history, err := LoadHistoryFile(path)
	if err != nil {
		return Case{}, err
	}
	c, err := CaseFromHistory(strings.TrimSuffix(filepath.Base(path), ".json"), history, opts)
	if err != nil {
		return Case{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// CasesFromRuns makes a case of each agent run of client's store that
// filter selects (filter.Workflow is the agent's name), newest first, as
// CaseFromHistory does, each named after its run. Runs of helper agents
// (child runs) are left out: they are part of their parent's. A run that
// is not an agent's is an error: select the agent with filter.Workflow.
func CasesFromRuns(ctx context.Context, client *durable.Client, filter backend.RunFilter, opts RecordOptions) ([]Case, error) {
	runs, err := client.ListRuns(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var ids []string
	for _, r := range runs {
		if r.ParentID == "" {
			ids = append(ids, r.ID)
		}
	}
	return CasesFromRunIDs(ctx, client, ids, opts)
}

// CasesFromRunIDs makes a case of each of the runs named, in that order,
// as CaseFromHistory does.
func CasesFromRunIDs(ctx context.Context, client *durable.Client, ids []string, opts RecordOptions) ([]Case, error) {
	cases := make([]Case, 0, len(ids))
	for _, id := range ids {
		history, err := client.History(ctx, id)
		if err != nil {
			return nil, err
		}
		c, err := CaseFromHistory(id, history, opts)
		if err != nil {
			return nil, err
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// Prefix returns what a replay from step from keeps of a recorded
// history: the events before the first one that belongs to step from or
// a later one, or that ends the run (run_completed, run_failed,
// run_canceled, run_continued), and never a step cut in two: if a step
// that the kept events schedule (an activity, a timer, a child run) is
// settled only after the cut, the cut moves back to before the event
// that scheduled it, and again until every step kept is whole. Events of
// earlier steps that come after the cut (parallel calls that finished
// late) are not kept either: the history stays a prefix, in its order.
// from <= 0 keeps the run_started event only.
//
// So the steps kept are replayed from the journal, as they were (their
// results, the signals the run had received by then, its version
// markers), and everything after them is executed again: the step at the
// cut, which may be earlier than from, and what follows. A from past the
// last step keeps everything but the run's end: the current code then
// computes the answer again from the recorded results, with no call.
func Prefix(history []backend.Event, from int) []backend.Event {
	if len(history) == 0 {
		return nil
	}
	if from <= 0 {
		return history[:1]
	}
	cut := len(history)
	for i, e := range history[1:] {
		if e.Step >= from || endsRun(e.Type) {
			cut = i + 1
			break
		}
	}
	for {
		open := map[int]int{} // step -> index of the event scheduling it
		for i, e := range history[:cut] {
			switch e.Type {
			case backend.EventActivityScheduled, backend.EventTimerStarted, backend.EventChildStarted:
				open[e.Step] = i
			case backend.EventActivityCompleted, backend.EventActivityFailed, backend.EventTimerFired,
				backend.EventTimerCanceled, backend.EventChildCompleted:
				delete(open, e.Step)
			}
		}
		if len(open) == 0 {
			return history[:cut]
		}
		for _, i := range open {
			cut = min(cut, i)
		}
	}
}

func endsRun(t backend.EventType) bool {
	switch t {
	case backend.EventRunCompleted, backend.EventRunFailed, backend.EventRunCanceled, backend.EventRunContinued:
		return true
	}
	return false
}

// Seeded says what Seed gave a run.
type Seeded struct {
	// RunID names the seeded run.
	RunID string
	// Events is the number of recorded events the run was given.
	Events int
	// From is the first step the run executes again: the step asked
	// for, or an earlier one when the cut moved back to keep a step
	// whole (see Prefix).
	From int
	// Turns is the number of user messages of a conversation the
	// history kept: the run is to be sent the case's Turns[Turns:].
	Turns int
}

// Seed creates the run runID in client's store with the recorded history
// up to step from (see Prefix for the rule), so that a worker with the
// agent replays those steps from the journal, calling no model and no
// tool for them, and runs the agent as it is now from there: only what
// comes after is called again. The run gets a new id, so the tools it
// calls get new idempotency keys, and a new trace (ctx's).
//
// The replayed steps are checked as any replay is: the agent's code must
// issue the same steps in the same order (the same activity names: model
// calls, the same tools, records). A changed prompt, model or tool
// behaviour replays, as inputs are not compared, only their journaled
// results are used; a change that makes the code issue another step (a
// tool the recorded model asked for that the agent no longer has, a
// renamed agent, an approval added) diverges: the run parks with a
// *durable.NondeterminismError, which AwaitSeeded returns. The store must
// be one the agent's workers serve (usually a fresh in-memory one); the
// recorded run need not be in it.
func Seed(ctx context.Context, client *durable.Client, runID string, history []backend.Event, from int) (Seeded, error) {
	kept := Prefix(history, from)
	if err := client.Seed(ctx, runID, kept); err != nil {
		return Seeded{}, err
	}
	s := Seeded{RunID: runID, Events: len(kept), From: 1}
	var in agent.Input
	if json.Unmarshal(kept[0].Payload, &in) == nil && in.Conversation && in.Message != "" {
		s.Turns++
	}
	for _, e := range kept {
		s.From = max(s.From, e.Step+1)
		if e.Type == backend.EventSignalReceived && e.Name == messageSignal {
			var m struct{ Text string }
			if json.Unmarshal(e.Payload, &m) == nil && m.Text != "" {
				s.Turns++
			}
		}
	}
	return s, nil
}

// SeedCase seeds the run runID for a trial of a case that has a Replay:
// Seed with the case's recorded history and Replay.From. A runner calls
// it instead of starting the run, then waits with AwaitSeeded and, for a
// conversation, sends the case's Turns[Seeded.Turns:].
func SeedCase(ctx context.Context, client *durable.Client, c *Case, runID string) (Seeded, error) {
	if c.Replay == nil {
		return Seeded{}, fmt.Errorf("case %s: no replay", c.Name)
	}
	if len(c.Replay.History) == 0 {
		return Seeded{}, fmt.Errorf("case %s: the replay of run %s has no history (see CasesFromRuns)", c.Name, c.Replay.RunID)
	}
	history, err := backend.UnmarshalHistory(bytes.NewReader(c.Replay.History))
	if err != nil {
		return Seeded{}, fmt.Errorf("case %s: replay history: %w", c.Name, err)
	}
	s, err := Seed(ctx, client, runID, history, c.Replay.From)
	if err != nil {
		return Seeded{}, fmt.Errorf("case %s: %w", c.Name, err)
	}
	return s, nil
}

// AwaitSeeded waits until a seeded run has ended or parked, and returns
// its record. A parked run (its code diverged from the recorded steps, see
// Seed) gives a *durable.RunError that unwraps to the kind of its failure
// (durable.ErrNondeterminism) and whose failure's Details hold the
// expected-vs-actual diff; Result on such a run would wait for ever. A
// run that failed is not an error here: its Result says why.
func AwaitSeeded(ctx context.Context, client *durable.Client, runID string) (backend.RunInfo, error) {
	for {
		info, err := client.Describe(ctx, runID)
		if err != nil {
			return backend.RunInfo{}, err
		}
		switch {
		case info.Status.Terminal():
			return info, nil
		case info.Status == backend.StatusParked:
			return info, &durable.RunError{RunID: runID, Status: info.Status, Failure: info.Failure}
		}
		if err := client.WaitChange(ctx, info); err != nil {
			return info, err
		}
	}
}
