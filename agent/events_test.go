package agent_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// follow reads a run's live events until it finishes.
func follow(t *testing.T, e *env, runID, after string) []agent.LiveEvent {
	t.Helper()
	var events []agent.LiveEvent
	err := e.rt.Follow(ctxT(t), runID, after, func(ev agent.LiveEvent) error {
		events = append(events, ev)
		return nil
	})
	require.NoError(t, err, "follow %s", runID)
	return events
}

// feedUntil reads a run's whole feed until it holds what cond wants.
// Unlike follow it does not stop at run_finished: the worker tells its
// observers of a write that lets a run go (it waits for a person, a
// message) after the run is let go, so another worker or goroutine that
// takes the run up at once may publish later events before those.
func feedUntil(t *testing.T, e *env, runID string, what string, cond func([]agent.LiveEvent) bool) []agent.LiveEvent {
	t.Helper()
	var events []agent.LiveEvent
	eventually(t, what, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var err error
		events, err = e.rt.LiveEvents(ctx, runID, "")
		return err == nil && cond(events)
	})
	return events
}

// counts says how many events of each type there are.
func counts(events []agent.LiveEvent) map[agent.LiveEventType]int {
	n := map[agent.LiveEventType]int{}
	for _, ev := range events {
		n[ev.Type]++
	}
	return n
}

func ofType(events []agent.LiveEvent, typ agent.LiveEventType) []agent.LiveEvent {
	var out []agent.LiveEvent
	for _, ev := range events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// TestLiveEvents follows the approval flow: tools started and finished,
// approvals requested and decided, the answer's text as it streams, and
// the end of the run; a reader resuming after an event gets only what
// came after it.
func TestLiveEvents(t *testing.T) {
	var s shop
	_, model := script(
		toolTurn(call("lookup", `{"order":"A1"}`), call("refund", `{"order":"A1","amount":500}`)),
		answer("Refund done for order A1."),
	)
	a := &agent.Agent{Name: "refunder", Model: model, Tools: s.tools(t)}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "live-1", agent.Input{Message: "refund"})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: "call_0_1", Approved: true, By: "alice", Reason: "ok"}))
	e.result(run)
	events := feedUntil(t, e, run.ID, "the approval events", func(evs []agent.LiveEvent) bool {
		n := counts(evs)
		return n[agent.LiveRunFinished] == 1 && n[agent.LiveApprovalRequested] == 1 && n[agent.LiveApprovalDecided] == 1
	})

	var ids []string
	for _, ev := range events {
		assert.Equal(t, run.ID, ev.RunID, "event %+v", ev)
		assert.NotEmpty(t, ev.ID, "event %+v", ev)
		assert.False(t, ev.Time.IsZero(), "event %+v", ev)
		ids = append(ids, ev.ID)
	}
	assert.IsIncreasing(t, ids, "event ids")

	started, finished := ofType(events, agent.LiveToolStarted), ofType(events, agent.LiveToolFinished)
	assert.Len(t, started, 2, "tool_started events")
	assert.Len(t, finished, 2, "tool_finished events")
	results := map[string]string{}
	for _, ev := range finished {
		if !assert.NotNil(t, ev.Result, "tool_finished %+v", ev) {
			continue
		}
		assert.False(t, ev.Result.IsError, "tool_finished %+v", ev)
		assert.Equal(t, 1, ev.Attempt, "tool_finished %+v", ev)
		assert.NotZero(t, ev.Step, "tool_finished %+v", ev)
		assert.Equal(t, "refunder", ev.Agent, "tool_finished %+v", ev)
		results[ev.CallID+" "+ev.Tool] = ev.Result.Content
	}
	assert.Equal(t, map[string]string{"call_0_0 lookup": `"order A1 is paid"`, "call_0_1 refund": `"refunded 500 on A1"`}, results, "tool results")
	for _, ev := range started {
		if ev.CallID == "call_0_1" {
			assert.Equal(t, `{"order":"A1","amount":500}`, ev.Arguments, "tool_started %+v", ev)
		}
	}

	req, dec := ofType(events, agent.LiveApprovalRequested), ofType(events, agent.LiveApprovalDecided)
	require.Len(t, req, 1, "approval_requested")
	assert.Equal(t, "call_0_1", req[0].CallID, "approval_requested")
	assert.Equal(t, "refund", req[0].Tool, "approval_requested")
	assert.Equal(t, `{"order":"A1","amount":500}`, req[0].Arguments, "approval_requested")
	require.Len(t, dec, 1, "approval_decided")
	assert.Equal(t, "call_0_1", dec[0].CallID, "approval_decided")
	assert.True(t, dec[0].Approved, "approval_decided")
	assert.Equal(t, "alice", dec[0].By, "approval_decided")
	assert.Equal(t, "ok", dec[0].Reason, "approval_decided")

	var text strings.Builder
	var tr agent.LiveText
	for _, ev := range events {
		tr.Add(ev)
		if ev.Type == agent.LiveTextDelta {
			text.WriteString(ev.Text)
		}
	}
	assert.Equal(t, "Refund done for order A1.", text.String(), "streamed text")
	assert.Equal(t, "Refund done for order A1.", tr.Text(), "transcript")
	fin := ofType(events, agent.LiveRunFinished)
	assert.Equal(t, backend.StatusCompleted, fin[0].Status, "run_finished %+v", fin[0])
	assert.Empty(t, fin[0].Error, "run_finished %+v", fin[0])
	// The order of what one worker did in a row: the decision, then the
	// refund it allowed, then the answer's text, then the end.
	pos := func(match func(agent.LiveEvent) bool) int {
		return slices.IndexFunc(events, match)
	}
	decAt := pos(func(ev agent.LiveEvent) bool { return ev.Type == agent.LiveApprovalDecided })
	refundAt := pos(func(ev agent.LiveEvent) bool { return ev.Type == agent.LiveToolStarted && ev.Tool == "refund" })
	textAt := pos(func(ev agent.LiveEvent) bool { return ev.Type == agent.LiveTextDelta })
	endAt := pos(func(ev agent.LiveEvent) bool { return ev.Type == agent.LiveRunFinished })
	assert.IsIncreasing(t, []int{decAt, refundAt, textAt, endAt}, "order: decided, refund, text, end")

	// Resuming after an event gives exactly the events after it.
	for _, mid := range []int{0, len(events) / 2, len(events) - 2} {
		rest, err := e.rt.LiveEvents(ctx, run.ID, events[mid].ID)
		require.NoError(t, err)
		var got, want []string
		for _, ev := range rest {
			got = append(got, ev.ID)
		}
		for _, ev := range events[mid+1:] {
			want = append(want, ev.ID)
		}
		assert.Equal(t, want, got, "resumed after %s", events[mid].ID)
	}
	// Follow, resumed near the end, delivers up to run_finished.
	tail := follow(t, e, run.ID, events[endAt-1].ID)
	require.Len(t, tail, 1, "follow from before the end")
	assert.Equal(t, agent.LiveRunFinished, tail[0].Type, "follow from before the end")
}

// flakyStream is a streaming model whose first attempt at each turn
// streams part of its answer and then fails with a retryable error, as a
// connection cut mid-stream does.
type flakyStream struct {
	mu       sync.Mutex
	attempts map[int]int
	answer   func(turn int) providers.Response
}

func (m *flakyStream) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	return m.Stream(ctx, req, func(providers.Delta) error { return nil })
}

func (m *flakyStream) Stream(ctx context.Context, req providers.Request, fn func(providers.Delta) error) (providers.Response, error) {
	turn := scripted.Turn(req)
	m.mu.Lock()
	m.attempts[turn]++
	n := m.attempts[turn]
	m.mu.Unlock()
	if n == 1 {
		if err := fn(providers.Delta{Text: "Hello, "}); err != nil {
			return providers.Response{}, err
		}
		return providers.Response{}, providers.Classify(&providers.Error{Kind: providers.ErrTruncated, Provider: "test",
			Message: "stream ended early"})
	}
	return scripted.New(m.answer(turn)).Stream(ctx, providers.Request{Messages: make([]providers.Message, 0)}, fn)
}

// TestLiveEventsAbandonedAttempt: text streamed by an attempt that then
// failed is marked abandoned; a transcript shows the retry's text once.
func TestLiveEventsAbandonedAttempt(t *testing.T) {
	model := &flakyStream{attempts: map[int]int{}, answer: func(int) providers.Response {
		return answer("Hello, world.")
	}}
	a := &agent.Agent{Name: "streamer", Model: model, ModelOptions: fastModel}
	e := newEnv(t, a)
	run := e.startRun(a, "stream-1", agent.Input{Message: "hi"})
	res := e.result(run)
	assert.Equal(t, "Hello, world.", res.Text)
	events := follow(t, e, run.ID, "")
	abandoned := ofType(events, agent.LiveAttemptAbandoned)
	require.Len(t, abandoned, 1, "abandoned")
	assert.Equal(t, 1, abandoned[0].Attempt, "abandoned %+v", abandoned)
	require.NotZero(t, abandoned[0].Step, "abandoned %+v", abandoned)
	var raw strings.Builder
	var tr agent.LiveText
	for _, ev := range events {
		tr.Add(ev)
		if ev.Type == agent.LiveTextDelta {
			assert.Equal(t, abandoned[0].Step, ev.Step, "delta of step")
			raw.WriteString(ev.Text)
		}
	}
	assert.Equal(t, "Hello, Hello, world.", raw.String(), "raw deltas: want the abandoned attempt's text, then the retry's")
	assert.Equal(t, "Hello, world.", tr.Text(), "transcript: want no duplicate text")
	h := e.history(run.ID)
	assert.Equal(t, 1, countEvents(h, backend.EventActivityAttemptFailed), "failed attempts in history")
	e.replays(a, run.ID)
}

// TestTranscriptSteps: a transcript joins the text of each step, keeping
// only the latest attempt that was not abandoned.
func TestTranscriptSteps(t *testing.T) {
	var tr agent.LiveText
	for _, ev := range []agent.LiveEvent{
		{Type: agent.LiveTextDelta, Step: 1, Attempt: 1, Text: "Let me "},
		{Type: agent.LiveTextDelta, Step: 1, Attempt: 1, Text: "check."},
		{Type: agent.LiveToolStarted, Step: 2, Attempt: 1},
		{Type: agent.LiveTextDelta, Step: 3, Attempt: 1, Text: "It is"},
		{Type: agent.LiveAttemptAbandoned, Step: 3, Attempt: 1},
		{Type: agent.LiveTextDelta, Step: 3, Attempt: 2, Text: "It is "},
		{Type: agent.LiveTextDelta, Step: 3, Attempt: 2, Text: "sunny."},
		{Type: agent.LiveTextDelta, Step: 4, Attempt: 1, Text: "lost"},
		{Type: agent.LiveAttemptAbandoned, Step: 4, Attempt: 1},
	} {
		tr.Add(ev)
	}
	assert.Equal(t, "Let me check.\nIt is sunny.", tr.Text(), "transcript")
	var zero agent.LiveText
	assert.Empty(t, zero.Text(), "zero transcript")
}

// TestLiveEventsFailedRun: a failed run ends its feed with run_finished
// failed and the error.
func TestLiveEventsFailedRun(t *testing.T) {
	_, model := newRecorder(func(int, providers.Request) (providers.Response, error) {
		return providers.Response{}, providers.Classify(&providers.Error{Kind: providers.ErrInvalidRequest, Provider: "test", Message: "bad model"})
	})
	a := &agent.Agent{Name: "broken", Model: model}
	e := newEnv(t, a)
	run := e.startRun(a, "dead-1", agent.Input{Message: "hi"})
	e.failure(run)
	events := follow(t, e, run.ID, "")
	require.NotEmpty(t, events)
	last := events[len(events)-1]
	assert.Equal(t, agent.LiveRunFinished, last.Type, "last event %+v", last)
	assert.Equal(t, backend.StatusFailed, last.Status, "last event %+v", last)
	assert.Contains(t, last.Error, "bad model", "last event %+v", last)
	// Follow stops when fn says so, with its error.
	stop := errors.New("stop")
	err := e.rt.Follow(ctxT(t), run.ID, "", func(agent.LiveEvent) error { return stop })
	assert.ErrorIs(t, err, stop, "follow with a failing fn")
}

// noFeed hides the store's live feed.
type noFeed struct{ backend.Store }

// TestNoFeed: on a store without a live feed, runs work and the event
// readers say there is none.
func TestNoFeed(t *testing.T) {
	var s shop
	_, model := script(toolTurn(call("lookup", `{"order":"A1"}`)), answer("paid"))
	a := &agent.Agent{Name: "quiet", Model: model, Tools: s.tools(t)}
	e := newEnvOn(t, noFeed{newMemoryStore()}, agent.Options{}, a)
	run := e.startRun(a, "quiet-1", agent.Input{Message: "?"})
	assert.Equal(t, "paid", e.result(run).Text, "result")
	ctx := ctxT(t)
	_, err := e.rt.LiveEvents(ctx, run.ID, "")
	assert.ErrorIs(t, err, agent.ErrNoFeed, "events")
	err = e.rt.Follow(ctx, run.ID, "", func(agent.LiveEvent) error { return nil })
	assert.ErrorIs(t, err, agent.ErrNoFeed, "follow")
}

// TestLiveEventsOfPeopleAndHandoffs: questions, answers, handoffs and
// conversation replies are in the feed.
func TestLiveEventsOfPeopleAndHandoffs(t *testing.T) {
	_, expertModel := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		if turn == 1 {
			return toolTurn(call("ask_human", `{"question":"Which order?"}`)), nil
		}
		return answer("Order " + lastToolContent(req)), nil
	})
	expert := &agent.Agent{Name: "expert", Model: expertModel, AskHuman: true}
	_, frontModel := script(toolTurn(call("transfer_to_expert", `{}`)))
	front := &agent.Agent{Name: "front", Model: frontModel, Handoffs: []*agent.Agent{expert}}
	e := newEnv(t, front)
	ctx := ctxT(t)
	run := e.startRun(front, "people-1", agent.Input{Conversation: true})
	id, err := e.rt.Send(ctx, run.ID, "help")
	require.NoError(t, err)
	var qs []agent.PendingCall
	eventually(t, "the question", func() bool {
		qs, _ = e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindQuestion})
		return len(qs) == 1
	})
	assert.Equal(t, "expert", qs[0].Agent, "question %+v", qs[0])
	assert.Equal(t, 2, qs[0].Turn, "question %+v", qs[0])
	assert.Equal(t, "call_1_0", qs[0].CallID, "question %+v", qs[0])
	require.NoError(t, e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_1_0", By: "erin", Text: "A7"}))
	r, err := e.rt.Reply(ctx, run.ID, id)
	require.NoError(t, err, "reply")
	assert.Equal(t, "expert", r.Agent, "reply %+v", r)
	assert.Contains(t, r.Text, "A7", "reply %+v", r)
	require.NoError(t, e.rt.End(ctx, run.ID))
	e.result(run)
	events := feedUntil(t, e, run.ID, "five events", func(evs []agent.LiveEvent) bool {
		n := counts(evs)
		return n[agent.LiveHandoff]+n[agent.LiveQuestionAsked]+n[agent.LiveQuestionAnswered]+n[agent.LiveReply]+n[agent.LiveRunFinished] == 5
	})
	var got []string
	for _, ev := range events {
		switch ev.Type {
		case agent.LiveHandoff:
			got = append(got, "handoff "+ev.Agent+" "+ev.Tool)
		case agent.LiveQuestionAsked:
			got = append(got, "asked "+ev.Agent+" "+ev.CallID+" "+ev.Text)
		case agent.LiveQuestionAnswered:
			got = append(got, "answered "+ev.CallID+" "+ev.By+" "+ev.Text)
		case agent.LiveReply:
			got = append(got, "reply "+ev.Agent+" "+ev.Text)
		case agent.LiveRunFinished:
			got = append(got, "finished "+string(ev.Status))
		}
	}
	// Sorted: writes that let the run go (the question asked, the reply)
	// may reach the feed after later ones, see feedUntil.
	slices.Sort(got)
	want := []string{
		"answered call_1_0 erin A7",
		"asked expert call_1_0 Which order?",
		"finished completed",
		"handoff front transfer_to_expert",
		`reply expert Order {"answer":"A7","answered_by":"erin"}`,
	}
	assert.Equal(t, want, got, "events")
	e.replays(front, run.ID)
}

func lastToolContent(req providers.Request) string {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == providers.RoleTool {
			return req.Messages[i].Content
		}
	}
	return ""
}
