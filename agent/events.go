package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/tools"
)

// LiveEventType names a kind of live event.
type LiveEventType string

// Live event types.
const (
	// LiveTextDelta is a piece of the model's answer, as it is written.
	LiveTextDelta LiveEventType = "text_delta"
	// LiveAttemptAbandoned says that the model call attempt (Step,
	// Attempt) failed and is retried: drop the text it streamed.
	LiveAttemptAbandoned LiveEventType = "attempt_abandoned"
	// LiveToolStarted: an attempt of a tool call started.
	LiveToolStarted LiveEventType = "tool_started"
	// LiveToolFinished: a tool call finished with Result (or, fatally,
	// with Error).
	LiveToolFinished LiveEventType = "tool_finished"
	// LiveToolNeedsInput: an attempt of a tool call ended asking for
	// Input (an MCP server's elicitation or sampling): questions for
	// people (each then a LiveQuestionAsked) and completions of the
	// agent's model; the call is made again once they are given.
	LiveToolNeedsInput LiveEventType = "tool_needs_input"
	// LiveToolProgress: a running tool call reported its Progress
	// (tools.ReportProgress; an MCP server's progress notifications).
	LiveToolProgress LiveEventType = "tool_progress"
	// LiveToolFailed: an attempt of a tool call failed with Error; it is
	// retried if its policy allows.
	LiveToolFailed LiveEventType = "tool_failed"
	// LiveApprovalRequested: a tool call waits for a person's decision.
	LiveApprovalRequested LiveEventType = "approval_requested"
	// LiveApprovalDecided: a call was approved or rejected.
	LiveApprovalDecided LiveEventType = "approval_decided"
	// LiveDecisionRefused: a decision or an answer was refused by the
	// worker's Authorizer (By, Reason); the call still waits.
	LiveDecisionRefused LiveEventType = "decision_refused"
	// LiveQuestionAsked: the model asked a person a question.
	LiveQuestionAsked LiveEventType = "question_asked"
	// LiveQuestionAnswered: the question was answered.
	LiveQuestionAnswered LiveEventType = "question_answered"
	// LiveHandoff: the conversation passed to another agent.
	LiveHandoff LiveEventType = "handoff"
	// LiveReply: a conversation answered a user message.
	LiveReply LiveEventType = "reply"
	// LiveRunFinished: the run ended, with Status and, unless it
	// completed, Error.
	LiveRunFinished LiveEventType = "run_finished"
)

// LiveEvent is an entry of a run's live feed. Which fields are set depends on
// Type.
type LiveEvent struct {
	// ID is the feed's id of the event: read on after it to resume.
	ID    string        `json:"-"`
	Type  LiveEventType `json:"type"`
	RunID string        `json:"run_id"`
	Time  time.Time     `json:"time"`
	Agent string        `json:"agent,omitempty"`
	// Step and Attempt name the activity attempt an event belongs to.
	Step    int `json:"step,omitempty"`
	Attempt int `json:"attempt,omitempty"`
	// Text is model text, a question, an answer, a reply.
	Text      string        `json:"text,omitempty"`
	CallID    string        `json:"call_id,omitempty"`
	Tool      string        `json:"tool,omitempty"`
	Arguments string        `json:"arguments,omitempty"`
	Result    *tools.Result `json:"result,omitempty"`
	// Progress is a running tool call's progress.
	Progress *tools.Progress `json:"progress,omitempty"`
	// Input is what a tool call asks for (LiveToolNeedsInput), without
	// the messages of its sampling requests.
	Input []tools.InputRequest `json:"input,omitempty"`
	// Schema and URL are what answer a tool's question wants
	// (LiveQuestionAsked of an elicitation): an object valid against the
	// JSON Schema, or a visit to the URL.
	Schema json.RawMessage `json:"schema,omitempty"`
	URL    string          `json:"url,omitempty"`
	// Approved, By and Reason describe a decision.
	Approved bool   `json:"approved,omitempty"`
	By       string `json:"by,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Status is how a run finished.
	Status backend.Status `json:"status,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// publish queues an event for the run's feed. Events are written in the
// background, in the order they were queued, so that no model or tool call
// waits for the feed; the feed is a view, and an event that cannot be
// written is logged and dropped, as are those queued when a process dies.
func (rt *Runtime) publish(runID string, e LiveEvent) {
	if rt.feed == nil {
		return
	}
	e.RunID = runID
	if e.Time.IsZero() {
		e.Time = rt.now()
	}
	rt.pub.add(e)
}

// publisher writes queued live events to the feed from one goroutine,
// which runs while there is something to write. Consecutive text deltas
// of one attempt are joined into one event, so a fast model costs a write
// per batch of tokens, not per token, and a slow one is shown as it writes.
type publisher struct {
	rt      *Runtime
	mu      sync.Mutex
	queue   []LiveEvent
	running bool
	idle    chan struct{} // closed when running becomes false; nil while idle
}

// flush waits until every queued event was written, or ctx is done.
func (p *publisher) flush(ctx context.Context) error {
	p.mu.Lock()
	idle := p.idle
	p.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *publisher) add(e LiveEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.queue); n > 0 && e.Type == LiveTextDelta {
		last := &p.queue[n-1]
		if last.Type == LiveTextDelta && last.RunID == e.RunID && last.Step == e.Step && last.Attempt == e.Attempt {
			last.Text += e.Text
			return
		}
	}
	p.queue = append(p.queue, e)
	if !p.running {
		p.running = true
		p.idle = make(chan struct{})
		go p.drain()
	}
}

func (p *publisher) drain() {
	for {
		p.mu.Lock()
		batch := p.queue
		p.queue = nil
		if len(batch) == 0 {
			p.running = false
			close(p.idle)
			p.idle = nil
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		// One write for each run's consecutive events.
		for len(batch) > 0 {
			n := 1
			for n < len(batch) && batch[n].RunID == batch[0].RunID {
				n++
			}
			p.write(batch[0].RunID, batch[:n])
			batch = batch[n:]
		}
	}
}

// write publishes events of run runID, in order, at once.
func (p *publisher) write(runID string, events []LiveEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries := make([][]byte, 0, len(events))
	for _, e := range events {
		data, err := json.Marshal(e)
		if err == nil {
			// The feed holds payloads too: it is sealed like history.
			data, err = p.rt.sealBlob(data)
		}
		if err != nil {
			p.rt.log.Warn("publish live event", "run", runID, "type", e.Type, "err", err)
			continue
		}
		entries = append(entries, data)
	}
	if _, err := p.rt.feed.Publish(ctx, runID, entries...); err != nil {
		p.rt.log.Warn("publish live events", "run", runID, "events", len(entries), "err", err)
	}
}

// observe turns what workers journal into live events: decisions, answers,
// handoffs, replies and the end of a run.
func (rt *Runtime) observe(ctx context.Context, w durable.Written) {
	if rt.feed == nil {
		return
	}
	for _, e := range w.Events {
		le, ok := liveEvent(w.Run, e)
		if ok {
			rt.publish(w.Run.ID, le)
		}
	}
}

// liveEvent is the live event for a journaled event, if it has one.
func liveEvent(run backend.RunInfo, e backend.Event) (LiveEvent, bool) {
	le := LiveEvent{Time: e.Time, Agent: run.Workflow, Step: e.Step}
	switch e.Type {
	case backend.EventRunCompleted, backend.EventRunFailed, backend.EventRunCanceled:
		le.Type = LiveRunFinished
		le.Status = map[backend.EventType]backend.Status{backend.EventRunCompleted: backend.StatusCompleted,
			backend.EventRunFailed: backend.StatusFailed, backend.EventRunCanceled: backend.StatusCanceled}[e.Type]
		if e.Failure != nil {
			le.Error = e.Failure.Message
		}
		return le, true
	case backend.EventSideEffect:
	default:
		return le, false
	}
	var r record
	if json.Unmarshal(e.Payload, &r) != nil {
		return le, false
	}
	le.Agent = r.Agent
	le.CallID, le.Tool, le.Arguments = r.CallID, r.Tool, r.Arguments
	le.Approved, le.By, le.Reason = r.Approved, r.By, r.Reason
	le.Text, le.Schema, le.URL = r.Text, r.Schema, r.URL
	switch e.Name {
	case recApprovalRequested:
		le.Type = LiveApprovalRequested
	case recApprovalDecided:
		le.Type = LiveApprovalDecided
	case recDecisionRefused:
		le.Type = LiveDecisionRefused
	case recQuestionAsked:
		le.Type = LiveQuestionAsked
	case recQuestionAnswered:
		le.Type = LiveQuestionAnswered
	case recHandoff:
		le.Type = LiveHandoff
	case recToolStarted:
		le.Type = LiveToolStarted
	case recToolFinished:
		le.Type, le.Result = LiveToolFinished, r.Result
	case recReply:
		le.Type = LiveReply
	default:
		return le, false
	}
	return le, true
}

// followCheckEvery is how often Follow checks whether a run it follows
// has ended without a run_finished event.
const followCheckEvery = 2 * time.Second

// ErrNoFeed means the store keeps no live feeds (see backend.Feed).
var ErrNoFeed = fmt.Errorf("agent: the store has no live feed")

// LiveEvents returns the run's live events after the event with id after ("":
// from the oldest kept), waiting until there is at least one or ctx is
// done. Keep the ID of the last event to resume after a reconnect.
func (rt *Runtime) LiveEvents(ctx context.Context, runID, after string) ([]LiveEvent, error) {
	if rt.feed == nil {
		return nil, ErrNoFeed
	}
	entries, err := rt.feed.ReadFeed(ctx, runID, after, 0)
	if err != nil {
		return nil, err
	}
	out := make([]LiveEvent, 0, len(entries))
	for _, en := range entries {
		var e LiveEvent
		data, err := rt.openBlob("live event "+en.ID, en.Data)
		if err == nil {
			err = json.Unmarshal(data, &e)
		}
		if err != nil {
			// Not ours, damaged, or sealed with a codec or key this
			// runtime lacks: skip it rather than stop the reader.
			rt.log.Warn("undecodable live event", "run", runID, "id", en.ID, "err", err)
			continue
		}
		e.ID = en.ID
		out = append(out, e)
	}
	return out, nil
}

// Flush waits until the live events this process queued are written to
// the store, or ctx is done. Events are written in the background; call
// Flush after the workers stop and before the store is closed, so that the
// last events of the runs they finished are not lost.
func (rt *Runtime) Flush(ctx context.Context) error { return rt.pub.flush(ctx) }

// Follow calls fn with the run's live events after after, as they come,
// until the run finishes (fn gets the run_finished event, or, if that
// event was lost with a worker that died, Follow sees that the run has
// ended and returns), fn returns an error, or ctx is done. It returns nil
// when the run finished.
//
// Text of abandoned attempts is not withheld: a reader that shows text
// drops what it showed for (Step, Attempt) when EventAttemptAbandoned
// comes, or uses a LiveText, which does.
func (rt *Runtime) Follow(ctx context.Context, runID, after string, fn func(LiveEvent) error) error {
	for {
		// Read in slices, to check now and then that the run has not
		// ended without its run_finished event.
		sliceCtx, cancel := context.WithTimeout(ctx, followCheckEvery)
		events, err := rt.LiveEvents(sliceCtx, runID, after)
		cancel()
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			info, derr := rt.client.Describe(ctx, runID)
			if derr != nil {
				return derr
			}
			if info.Status.Terminal() {
				return nil
			}
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range events {
			after = e.ID
			if err := fn(e); err != nil {
				return err
			}
			if e.Type == LiveRunFinished {
				return nil
			}
		}
	}
}

// LiveText assembles the model text of live events, per step, without
// the text of attempts that were abandoned: what a reader shows after a
// retry contains no duplicate. The zero LiveText is ready to use.
type LiveText struct {
	steps []int
	text  map[int]map[int]*strings.Builder // step -> attempt -> text
	void  map[[2]int]bool
}

// Add takes in an event; events other than text deltas and abandoned
// attempts are ignored.
func (t *LiveText) Add(e LiveEvent) {
	switch e.Type {
	case LiveAttemptAbandoned:
		if t.void == nil {
			t.void = map[[2]int]bool{}
		}
		t.void[[2]int{e.Step, e.Attempt}] = true
	case LiveTextDelta:
		if t.text == nil {
			t.text = map[int]map[int]*strings.Builder{}
		}
		byAttempt, ok := t.text[e.Step]
		if !ok {
			byAttempt = map[int]*strings.Builder{}
			t.text[e.Step] = byAttempt
			t.steps = append(t.steps, e.Step)
		}
		b, ok := byAttempt[e.Attempt]
		if !ok {
			b = &strings.Builder{}
			byAttempt[e.Attempt] = b
		}
		b.WriteString(e.Text)
	}
}

// Text returns the text of each step's latest attempt that was not
// abandoned, steps in the order they first streamed, one per line.
func (t *LiveText) Text() string {
	var parts []string
	for _, step := range t.steps {
		best := 0
		for attempt := range t.text[step] {
			if !t.void[[2]int{step, attempt}] && attempt > best {
				best = attempt
			}
		}
		if best > 0 {
			parts = append(parts, t.text[step][best].String())
		}
	}
	return strings.Join(parts, "\n")
}
