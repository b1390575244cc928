package durable

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// workflowRuntime holds one run of a workflow in memory: its coroutines, the
// commands they issued, and the events not yet committed. It is driven by
// one goroutine at a time (an executor, or a replay check) through load,
// apply and close; workflow code runs only inside those calls.
//
// Determinism rests on one rule: events that come from outside (results,
// timers, signals) are delivered one at a time, in history order, and the
// workflow runs until it blocks after each. Replay does exactly the same, so
// the code takes the same branches, issues the same commands with the same
// step numbers, and Select picks the same winner.
type workflowRuntime struct {
	runID      string
	generation int
	def        workflowDef
	log        *slog.Logger

	now time.Time
	rng *rand.Rand

	// seq is the position of the last event, committed or not.
	seq int64
	// fresh are events after the last commit, in order.
	fresh []backend.Event
	// recorded are the command events of the loaded history not yet
	// matched by the code, by type and step.
	recorded map[cmdKey]backend.Event
	versions map[string]int
	// replaying is true while delivering an event that has later events
	// in the loaded history.
	replaying bool

	coroutines []*coroutine
	current    *coroutine
	killing    bool

	lastStep int
	pending  map[int]*command
	issued   []*command
	signals  map[string][]backend.Event
	canceled bool
	// waitStatus is the status the run is reported with while it waits,
	// set by SetWaitingStatus; empty means StatusWaiting.
	waitStatus backend.Status
	// awaiting is the JSON set by SetAwaiting, nil if none.
	awaiting []byte

	// outcome is set when the workflow has ended.
	outcome *backend.Event
	// fatal is set when the run cannot go on with this code; it parks.
	fatal error
}

type cmdKey struct {
	t    backend.EventType
	step int
}

// command is a step the workflow issued and waits on: an activity, a timer
// or a child run.
type command struct {
	step     int
	kind     backend.EventType
	name     string
	resolve  func(backend.Event)
	recorded bool

	// Activities.
	activity   activityDef
	input      []byte
	cancelable bool
	attempt    int
	// lost counts the attempts recorded as lost with their workers.
	lost    int
	running bool
	retryAt time.Time
	// startedAt is when the current attempt started (or was queued).
	startedAt time.Time
	// parent is the step whose span the step's hangs under (WithinStep).
	parent int
	// Timers.
	fireAt time.Time
	// Children.
	childID string
}

func newRuntime(runID string, generation int, def workflowDef, log *slog.Logger) *workflowRuntime {
	rt := &workflowRuntime{
		runID:      runID,
		generation: generation,
		def:        def,
		recorded:   map[cmdKey]backend.Event{},
		versions:   map[string]int{},
		pending:    map[int]*command{},
		signals:    map[string][]backend.Event{},
	}
	rt.log = slog.New(replayHandler{log.Handler(), rt}).With("run_id", runID, "workflow", def.name)
	return rt
}

// load replays a history: incoming events are delivered, command events are
// kept to be matched by the commands the code issues. Afterwards fresh holds
// what the code did beyond the history (normally nothing).
func (rt *workflowRuntime) load(history []backend.Event) {
	for _, e := range history {
		switch {
		case e.Type == backend.EventVersion:
			rt.versions[e.Name] = e.Version
		case e.Type.IsCommand():
			rt.recorded[cmdKey{e.Type, e.Step}] = e
		}
	}
	if len(history) > 0 {
		// Commands the code issues beyond history go after its end.
		rt.seq = history[len(history)-1].Seq
	}
	for i, e := range history {
		if e.Type.IsCommand() {
			continue
		}
		if rt.outcome != nil {
			// The workflow ended, yet history goes on.
			rt.unexpected(e)
			break
		}
		rt.replaying = i < len(history)-1
		rt.deliver(e)
		if rt.fatal != nil {
			break
		}
	}
	rt.replaying = false
	if rt.fatal == nil {
		rt.checkUnmatched()
	}
}

// checkUnmatched parks the run if history recorded commands the code did
// not issue.
func (rt *workflowRuntime) checkUnmatched() {
	var left []backend.Event
	for _, e := range rt.recorded {
		left = append(left, e)
	}
	if len(left) == 0 {
		return
	}
	first := slices.MinFunc(left, func(a, b backend.Event) int { return int(a.Seq - b.Seq) })
	rt.fail(&NondeterminismError{RunID: rt.runID, Seq: first.Seq, Step: first.Step,
		Expected: describeEvent(first), Actual: "did not issue it"})
}

// apply appends a new incoming event and delivers it.
func (rt *workflowRuntime) apply(e backend.Event) {
	rt.seq++
	e.Seq = rt.seq
	if cmd := rt.pending[e.Step]; e.Step > 0 && cmd != nil && e.Type != backend.EventActivityAttemptStarted {
		e.Started, e.Parent = cmd.startedAt, cmd.parent
		if e.Name == "" {
			e.Name = cmd.name
		}
	}
	if e.Type == backend.EventSignalReceived {
		e.Started = rt.signalWaitStart(e.Name)
	}
	rt.fresh = append(rt.fresh, e)
	rt.deliver(e)
}

// record appends a command event the code issued, unless history has it.
func (rt *workflowRuntime) record(e backend.Event) {
	rt.seq++
	e.Seq = rt.seq
	e.Time = rt.now
	rt.fresh = append(rt.fresh, e)
}

// takeFresh returns the events since the last call and forgets them.
func (rt *workflowRuntime) takeFresh() []backend.Event {
	f := rt.fresh
	rt.fresh = nil
	return f
}

// deliver hands an incoming event to the workflow and runs it until it
// blocks.
func (rt *workflowRuntime) deliver(e backend.Event) {
	switch e.Type {
	case backend.EventRunStarted:
		rt.now = e.Time
		rt.rng = rand.New(rand.NewPCG(e.Seed, e.Seed^0x9e3779b97f4a7c15))
		input := e.Payload
		ctx := workflowContext{rt: rt}
		rt.spawn(func() {
			out, err := rt.def.run(ctx, input)
			rt.finish(out, err)
		})
	case backend.EventActivityAttemptFailed, backend.EventActivityAttemptStarted:
		// Bookkeeping of retries; the workflow does not see attempts.
		cmd := rt.pending[e.Step]
		if cmd == nil || cmd.kind != backend.EventActivityScheduled {
			rt.unexpected(e)
			return
		}
		cmd.attempt = e.Attempt
		if e.Type == backend.EventActivityAttemptFailed && e.Failure != nil && e.Failure.Kind == backend.KindLost {
			cmd.lost++
		}
		cmd.running = e.Type == backend.EventActivityAttemptStarted
		cmd.retryAt = e.FireAt
		if cmd.running {
			cmd.startedAt = e.Time
		}
		return
	case backend.EventActivityCompleted, backend.EventActivityFailed, backend.EventTimerFired, backend.EventChildCompleted:
		cmd := rt.pending[e.Step]
		if cmd == nil || cmd.kind != resolvedBy(e.Type) {
			rt.unexpected(e)
			return
		}
		delete(rt.pending, e.Step)
		rt.now = e.Time
		cmd.resolve(e)
	case backend.EventSignalReceived:
		rt.now = e.Time
		rt.signals[e.Name] = append(rt.signals[e.Name], e)
	case backend.EventCancelRequested:
		rt.now = e.Time
		rt.canceled = true
	default:
		rt.fail(fmt.Errorf("%w: %s event %d cannot be delivered", backend.ErrCorruptHistory, e.Type, e.Seq))
		return
	}
	rt.runUntilBlocked()
}

func resolvedBy(t backend.EventType) backend.EventType {
	switch t {
	case backend.EventActivityCompleted, backend.EventActivityFailed:
		return backend.EventActivityScheduled
	case backend.EventTimerFired:
		return backend.EventTimerStarted
	}
	return backend.EventChildStarted
}

// unexpected parks the run on an event for a step the code has not issued.
func (rt *workflowRuntime) unexpected(e backend.Event) {
	actual := fmt.Sprintf("has no pending step %d for it", e.Step)
	if rt.outcome != nil {
		actual = "had already ended"
	}
	rt.fail(&NondeterminismError{RunID: rt.runID, Seq: e.Seq, Step: e.Step,
		Expected: describeEvent(e), Actual: actual})
}

// fail parks the run: the first error wins.
func (rt *workflowRuntime) fail(err error) {
	if rt.fatal == nil {
		rt.fatal = err
	}
}

// issue registers a step-owning command the code issued: it is matched with
// history, or recorded as new.
func (rt *workflowRuntime) issue(ctx Context, cmd *command, e backend.Event) {
	rt.check()
	rt.lastStep++
	cmd.step, e.Step = rt.lastStep, rt.lastStep
	cmd.parent = ctx.parentStep()
	if e.Type == backend.EventSideEffect {
		e.Parent = cmd.parent // it ends as it starts
	}
	cmd.kind = e.Type
	cmd.name = e.Name
	cmd.startedAt = rt.now
	if rec, ok := rt.recorded[cmdKey{e.Type, e.Step}]; ok {
		cmd.startedAt = rec.Time
	} else if cmd.input != nil {
		// Inputs are journaled as a hash, computed only when recorded.
		e.InputHash = hashStepInput(cmd.input)
	}
	isNew := rt.matchOrRecord(e)
	cmd.recorded = !isNew
	rt.check()
	if cmd.resolve != nil {
		rt.pending[cmd.step] = cmd
	}
	if isNew {
		rt.issued = append(rt.issued, cmd)
	}
}

// takeIssued returns the commands issued, and not in history, since the
// last call: the work an executor must start once they are committed.
func (rt *workflowRuntime) takeIssued() []*command {
	c := rt.issued
	rt.issued = nil
	return c
}

// matchOrRecord matches a command with the recorded one at its step, or
// records it and reports true. A mismatch parks the run.
func (rt *workflowRuntime) matchOrRecord(e backend.Event) bool {
	key := cmdKey{e.Type, e.Step}
	if rec, ok := rt.recorded[key]; ok {
		if rec.Name != e.Name {
			rt.fail(&NondeterminismError{RunID: rt.runID, Seq: rec.Seq, Step: e.Step,
				Expected: describeEvent(rec), Actual: "issued " + describeEvent(e)})
			return false
		}
		delete(rt.recorded, key)
		return false
	}
	if e.Step > 0 && e.Type != backend.EventTimerCanceled {
		for _, t := range []backend.EventType{backend.EventActivityScheduled, backend.EventTimerStarted, backend.EventSideEffect, backend.EventChildStarted} {
			if rec, ok := rt.recorded[cmdKey{t, e.Step}]; ok {
				rt.fail(&NondeterminismError{RunID: rt.runID, Seq: rec.Seq, Step: e.Step,
					Expected: describeEvent(rec), Actual: "issued " + describeEvent(e)})
				return false
			}
		}
	}
	rt.record(e)
	return true
}

// finish ends the run with the workflow's result.
func (rt *workflowRuntime) finish(out []byte, err error) {
	if rt.outcome != nil || rt.stopped() {
		return
	}
	e := backend.Event{Type: backend.EventRunCompleted, Payload: out}
	var can *continueAsNewError
	switch {
	case errors.As(err, &can):
		if got := reflect.TypeOf(can.input); got != rt.def.inType {
			e = backend.Event{Type: backend.EventRunFailed, Failure: &backend.Failure{Message: fmt.Sprintf(
				"continue as new: input is %v, workflow %s takes %v", got, rt.def.name, rt.def.inType), NonRetryable: true}}
			break
		}
		payload, encErr := json.Marshal(can.input)
		if encErr != nil {
			e = backend.Event{Type: backend.EventRunFailed, Failure: &backend.Failure{Message: "continue as new: " + encErr.Error()}}
			break
		}
		e = backend.Event{Type: backend.EventRunStarted, Payload: payload, Seed: rt.rng.Uint64()}
	case errors.Is(err, ErrCanceled) && rt.canceled:
		e = backend.Event{Type: backend.EventRunCanceled, Failure: failureOf(err)}
	case err != nil:
		e = backend.Event{Type: backend.EventRunFailed, Failure: failureOf(err)}
	}
	if e.Type != backend.EventRunStarted {
		if rec, ok := rt.terminalRecorded(); ok && rec.Type != e.Type {
			rt.fail(&NondeterminismError{RunID: rt.runID, Seq: rec.Seq,
				Expected: describeEvent(rec), Actual: "ended with " + describeEvent(e)})
			return
		}
		rt.matchOrRecord(e)
	}
	rt.outcome = &e
}

func (rt *workflowRuntime) terminalRecorded() (backend.Event, bool) {
	for _, t := range []backend.EventType{backend.EventRunCompleted, backend.EventRunFailed, backend.EventRunCanceled} {
		if e, ok := rt.recorded[cmdKey{t, 0}]; ok {
			return e, true
		}
	}
	return backend.Event{}, false
}

// continueAsNewError is returned by ContinueAsNew.
type continueAsNewError struct{ input any }

func (e *continueAsNewError) Error() string { return "continue as new" }

// ContinueAsNew returns an error that, returned by a workflow function,
// ends the run's current history and starts the workflow over with input
// and a fresh history, under the same run id. input must have the
// workflow's input type. Signals that were delivered but not yet received
// are carried over. Use it to keep the history of an endless run (a chat
// session, a poller) short.
func ContinueAsNew(ctx Context, input any) error {
	ctx.runtime().check()
	return &continueAsNewError{input: input}
}

// carriedSignals are the signals delivered and not received, in order, for
// the next history of a run that continues as new.
func (rt *workflowRuntime) carriedSignals() []backend.Event {
	var all []backend.Event
	for _, q := range rt.signals {
		all = append(all, q...)
	}
	slices.SortFunc(all, func(a, b backend.Event) int { return int(a.Seq - b.Seq) })
	return all
}

// describeEvent renders an event for humans: "activity TakeOrder (step 1)".
func describeEvent(e backend.Event) string {
	switch e.Type {
	case backend.EventActivityScheduled:
		return fmt.Sprintf("activity %s (step %d)", e.Name, e.Step)
	case backend.EventTimerStarted:
		return fmt.Sprintf("timer (step %d)", e.Step)
	case backend.EventTimerCanceled:
		return fmt.Sprintf("cancellation of timer step %d", e.Step)
	case backend.EventSideEffect:
		if e.Name != "" {
			return fmt.Sprintf("record %s (step %d)", e.Name, e.Step)
		}
		return fmt.Sprintf("side effect (step %d)", e.Step)
	case backend.EventChildStarted:
		return fmt.Sprintf("child workflow %s (step %d)", e.Name, e.Step)
	case backend.EventVersion:
		return fmt.Sprintf("version %d of change %q", e.Version, e.Name)
	case backend.EventRunCompleted:
		return "run completed"
	case backend.EventRunFailed:
		return "run failed"
	case backend.EventRunCanceled:
		return "run canceled"
	}
	if e.Step > 0 {
		return fmt.Sprintf("%s for step %d", e.Type, e.Step)
	}
	return string(e.Type)
}
