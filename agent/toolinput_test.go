package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

const seatSchema = `{"type":"object","properties":{"seat":{"type":"string","enum":["aisle","window"]}},"required":["seat"]}`

// booker is a tool that, like an MCP server's, asks for a person's choice
// (an elicitation) and a model's completion (sampling) before it books.
type booker struct {
	mu   sync.Mutex
	keys []string // the idempotency key of each round
	// schema is the requested schema (seatSchema by default).
	schema string
}

func (b *booker) tool(t *testing.T) *tools.Tool {
	return tools.MustNew("book", "Book a seat.", func(ctx context.Context, in struct {
		Flight string `json:"flight"`
	}) (string, error) {
		key, _ := tools.IdempotencyKey(ctx)
		b.mu.Lock()
		b.keys = append(b.keys, key)
		schema := b.schema
		b.mu.Unlock()
		input, ok := tools.InputFrom(ctx)
		seat, okSeat := input.Response("seat")
		blurb, okBlurb := input.Response("blurb")
		if !ok || !okSeat || !okBlurb {
			return "", tools.NeedInput("state-of-"+in.Flight,
				tools.InputRequest{ID: "seat", Kind: tools.InputElicitation, Message: "Aisle or window on " + in.Flight + "?",
					Schema: json.RawMessage(cmpOr(schema, seatSchema))},
				tools.InputRequest{ID: "blurb", Kind: tools.InputSampling, Sampling: &providers.Request{System: "sampler",
					Messages: []providers.Message{{Role: providers.RoleUser, Content: "Describe " + in.Flight}}}})
		}
		if seat.Action != tools.ActionAccept {
			return fmt.Sprintf("not booked: the person chose to %s (state %s)", seat.Action, input.State), nil
		}
		var s struct{ Seat string }
		require.NoError(t, json.Unmarshal(seat.Content, &s))
		return fmt.Sprintf("booked %s by %s; %s", s.Seat, seat.By, blurb.Sample.Message.Content), nil
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// samplingModel answers the agent's turns with turns, and the tool's
// sampling requests (system "sampler") with a blurb, counting them.
func samplingModel(turns ...providers.Response) (*scripted.Model, func() int) {
	var mu sync.Mutex
	samples := 0
	_, model := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		if req.System == "sampler" {
			mu.Lock()
			samples++
			mu.Unlock()
			return providers.Response{Message: providers.Message{Content: "a fine flight"},
				Usage: providers.Usage{InputTokens: 7, OutputTokens: 3}}, nil
		}
		if turn >= len(turns) {
			return providers.Response{}, durable.NonRetryable(fmt.Errorf("script exhausted"))
		}
		return turns[turn], nil
	})
	return model, func() int { mu.Lock(); defer mu.Unlock(); return samples }
}

// TestToolInput: a tool that needs a person's answer and a model's
// completion ends its call with them; the run asks the person (a pending
// question with the requested schema, answered with Runtime.Answer and
// checked against the schema), samples the agent's model once, as an
// activity of its own, and calls the tool again with the same idempotency
// key and both responses.
func TestToolInput(t *testing.T) {
	b := &booker{}
	turns := []providers.Response{toolTurn(call("book", `{"flight":"LH1"}`)), answer("Booked.")}
	model, samples := samplingModel(turns...)
	a := &agent.Agent{Name: "travel", Model: model, Tools: mustSet(t, b.tool(t))}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "input-1", agent.Input{Message: "Book LH1."})
	q := e.onePending(agent.PendingFilter{Kind: agent.KindQuestion})
	assert.Equal(t, "book", q.Tool)
	assert.Equal(t, "Aisle or window on LH1?", q.Question)
	assert.JSONEq(t, seatSchema, string(q.Schema))
	assert.JSONEq(t, `{"flight":"LH1"}`, q.Arguments)
	assert.Equal(t, backend.StatusWaiting, e.waitStatus(run.ID, backend.StatusWaiting).Status)

	// An answer that breaks the schema is refused, and nothing is sent.
	err := e.rt.Answer(ctx, run.ID, agent.Answer{CallID: q.CallID, By: "ann", Text: `{"seat":"roof"}`})
	require.ErrorIs(t, err, agent.ErrInvalidAnswer)
	assert.Contains(t, err.Error(), "/seat")
	err = e.rt.Answer(ctx, run.ID, agent.Answer{CallID: q.CallID, By: "ann", Text: `aisle`})
	require.ErrorIs(t, err, agent.ErrInvalidAnswer)
	err = e.rt.Answer(ctx, run.ID, agent.Answer{CallID: q.CallID, By: "ann", Action: "later"})
	require.ErrorIs(t, err, agent.ErrInvalidAnswer)
	qs, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
	require.NoError(t, err)
	require.Len(t, qs, 1, "the question still waits")

	require.NoError(t, e.rt.Answer(ctx, run.ID, agent.Answer{CallID: q.CallID, By: "ann", Text: `{"seat":"window"}`}))
	res := e.result(run)
	assert.Equal(t, "Booked.", res.Text)
	assert.Equal(t, `"booked window by ann; a fine flight"`, toolResult(t, res.Messages, q.CallID))
	assert.Equal(t, 1, samples(), "the model sampled once")
	b.mu.Lock()
	require.Len(t, b.keys, 2, "two rounds")
	assert.Equal(t, b.keys[0], b.keys[1], "the same idempotency key in both rounds")
	b.mu.Unlock()

	// The live feed says what the first round asked for (without the
	// sampling request's messages), and what the question wants.
	events := feedUntil(t, e, run.ID, "the question in the feed", func(evs []agent.LiveEvent) bool {
		return len(ofType(evs, agent.LiveToolNeedsInput)) == 1 && len(ofType(evs, agent.LiveQuestionAsked)) == 1
	})
	needs := ofType(events, agent.LiveToolNeedsInput)[0]
	assert.Equal(t, "book", needs.Tool)
	assert.Equal(t, q.CallID, needs.CallID)
	require.Len(t, needs.Input, 2, "the requests of the first round")
	for _, r := range needs.Input {
		assert.Nil(t, r.Sampling, "request %s: the sampling request's messages are in the feed", r.ID)
	}
	asked := ofType(events, agent.LiveQuestionAsked)[0]
	assert.JSONEq(t, seatSchema, string(asked.Schema), "the question's schema in the feed")

	h := e.history(run.ID)
	askedRecords := records(t, h, "question_asked")
	require.Len(t, askedRecords, 1)
	assert.Equal(t, "seat", askedRecords[0]["input"])
	answered := records(t, h, "question_answered")
	require.Len(t, answered, 1)
	assert.Equal(t, "ann", answered[0]["by"])
	assert.Equal(t, "accept", answered[0]["action"])
	var names []string
	var used providers.Usage
	for _, ev := range h {
		if ev.Type == backend.EventActivityCompleted {
			names = append(names, ev.Name)
			var resp providers.Response
			if (ev.Name == "model:travel" || ev.Name == "sample:travel") && json.Unmarshal(ev.Payload, &resp) == nil {
				used.InputTokens += resp.Usage.InputTokens
				used.OutputTokens += resp.Usage.OutputTokens
			}
		}
	}
	assert.Equal(t, used.InputTokens, res.Usage.InputTokens, "every model call's tokens count, the sample's too")
	assert.Equal(t, used.OutputTokens, res.Usage.OutputTokens)
	assert.Equal(t, []string{"model:travel", "tool:travel/book", "sample:travel", "tool:travel/book", "model:travel"}, names,
		"the sample is a model call of its own, between the two rounds")
	e.replays(a, run.ID)
}

// TestToolInputDecline: a person declines; the tool is told, and says so
// to the model. An answer that breaks the schema and skipped the client's
// check is refused by the worker, recorded, and the question waits on.
func TestToolInputDecline(t *testing.T) {
	b := &booker{}
	model, _ := samplingModel(toolTurn(call("book", `{"flight":"AF2"}`)), answer("Not booked."))
	a := &agent.Agent{Name: "declined", Model: model, Tools: mustSet(t, b.tool(t))}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "input-2", agent.Input{Message: "Book AF2."})
	q := e.onePending(agent.PendingFilter{RunID: run.ID})
	// Past Runtime.Answer's check, straight to the run: the worker checks.
	payload := map[string]any{"turn": q.Turn, "call_id": q.CallID, "by": "mallory", "text": `{"seat":7}`}
	require.NoError(t, e.rt.Client().Signal(ctx, run.ID, "cairn.answer", payload))
	eventually(t, "the refusal", func() bool { return len(records(t, e.history(run.ID), "decision_refused")) == 1 })
	refused := records(t, e.history(run.ID), "decision_refused")[0]
	assert.Equal(t, "mallory", refused["by"])
	assert.Contains(t, refused["reason"], "does not match the requested schema")

	require.NoError(t, e.rt.Answer(ctx, run.ID, agent.Answer{CallID: q.CallID, By: "ann", Action: tools.ActionDecline}))
	res := e.result(run)
	assert.Equal(t, `"not booked: the person chose to decline (state state-of-AF2)"`, toolResult(t, res.Messages, q.CallID))
	e.replays(a, run.ID)
}

// TestToolInputBadRequest: a tool asking for input with a schema that is
// not one of an object: the model reads why, nobody is asked.
func TestToolInputBadRequest(t *testing.T) {
	b := &booker{schema: `{"type":"string"}`}
	model, samples := samplingModel(toolTurn(call("book", `{"flight":"BA3"}`)), answer("Sorry."))
	a := &agent.Agent{Name: "badschema", Model: model, Tools: mustSet(t, b.tool(t))}
	e := newEnv(t, a)
	run := e.startRun(a, "input-3", agent.Input{Message: "Book BA3."})
	res := e.result(run)
	content := toolResult(t, res.Messages, "call_0_0")
	assert.True(t, strings.HasPrefix(content, "the tool book asked for input that cannot be given"), content)
	assert.Zero(t, samples())
	assert.Empty(t, records(t, e.history(run.ID), "question_asked"))
	e.replays(a, run.ID)
}

// TestToolInputRounds: a tool that keeps asking is given up after
// maxInputRounds rounds, and the model reads why.
func TestToolInputRounds(t *testing.T) {
	var rounds atomic.Int32
	greedy := tools.MustNew("greedy", "Ask and ask.", func(ctx context.Context, _ struct{}) (string, error) {
		in, _ := tools.InputFrom(ctx)
		rounds.Add(1)
		return "", tools.NeedInput("", tools.InputRequest{ID: fmt.Sprint("s", len(in.Responses)), Kind: tools.InputSampling,
			Sampling: &providers.Request{System: "sampler", Messages: []providers.Message{{Role: providers.RoleUser, Content: "more"}}}})
	})
	model, samples := samplingModel(toolTurn(call("greedy", `{}`)), answer("gave up"))
	a := &agent.Agent{Name: "greedy", Model: model, Tools: mustSet(t, greedy)}
	e := newEnv(t, a)
	res := e.result(e.startRun(a, "input-4", agent.Input{Message: "go"}))
	assert.Contains(t, toolResult(t, res.Messages, "call_0_0"), "kept asking for input (10 rounds)")
	assert.Equal(t, 10, samples())
	assert.Equal(t, int32(11), rounds.Load())
	e.replays(a, "input-4")
}

// TestToolInputTwoCalls: two calls of a turn that need input wait for
// their people at once, and each is made again when its own input is in;
// answered in the other order than asked, the results are in the model's
// order, and the history replays.
func TestToolInputTwoCalls(t *testing.T) {
	b := &booker{}
	model, samples := samplingModel(toolTurn(call("book", `{"flight":"LH1"}`), call("book", `{"flight":"AF2"}`)), answer("Both."))
	a := &agent.Agent{Name: "twice", Model: model, Tools: mustSet(t, b.tool(t))}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "input-5", agent.Input{Message: "Book both."})
	qs := e.pending(agent.PendingFilter{RunID: run.ID}, 2)
	assert.Equal(t, []string{"call_0_0", "call_0_1"}, []string{qs[0].CallID, qs[1].CallID})
	require.NoError(t, e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_1", By: "bo", Text: `{"seat":"aisle"}`}))
	eventually(t, "the second call done", func() bool {
		qs, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
		return err == nil && len(qs) == 1 && qs[0].CallID == "call_0_0"
	})
	require.NoError(t, e.rt.Answer(ctx, run.ID, agent.Answer{CallID: "call_0_0", By: "ann", Text: `{"seat":"window"}`}))
	res := e.result(run)
	assert.Equal(t, `"booked window by ann; a fine flight"`, toolResult(t, res.Messages, "call_0_0"))
	assert.Equal(t, `"booked aisle by bo; a fine flight"`, toolResult(t, res.Messages, "call_0_1"))
	assert.Equal(t, 2, samples())
	e.replays(a, run.ID)
}
