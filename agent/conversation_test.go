package agent_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
)

// echoAgent answers each message with what it heard so far, so a test can
// see what the model was sent.
func echoAgent(name string, limit int) (*recorder, *agent.Agent) {
	rec, model := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		return answer(fmt.Sprintf("#%d %s", turn, strings.Join(userTexts(req), "|"))), nil
	})
	return rec, &agent.Agent{Name: name, Model: model, ConversationLimit: limit}
}

// TestConversation: a chat session answers message after message; past
// ConversationLimit exchanges it continues as new carrying the
// conversation forward; End completes it with the last result.
func TestConversation(t *testing.T) {
	_, a := echoAgent("chat", 2)
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "chat-1", agent.Input{Conversation: true})
	e.waitStatus(run.ID, backend.StatusWaiting)

	sayNow := func(text string) agent.Reply {
		t.Helper()
		r, err := say(ctx, e.rt, run.ID, text)
		require.NoError(t, err)
		assert.Empty(t, r.Error, "reply %+v", r)
		assert.Equal(t, "chat", r.Agent, "reply %+v", r)
		assert.NotEmpty(t, r.MessageID, "reply %+v", r)
		return r
	}
	assert.Equal(t, "#0 one", sayNow("one").Text, "reply")
	id, err := e.rt.Send(ctx, run.ID, "two")
	require.NoError(t, err)
	r2, err := e.rt.Reply(ctx, run.ID, id)
	require.NoError(t, err)
	assert.Equal(t, "#1 one|two", r2.Text, "reply")
	// Two exchanges: the run starts a fresh history.
	eventually(t, "continue-as-new", func() bool {
		info, err := run.Describe(ctx)
		return err == nil && info.Generation == 1 && !info.Status.Terminal()
	})
	// The reply given just before is still found, in the new history.
	again, err := e.rt.Reply(ctx, run.ID, id)
	require.NoError(t, err, "reply after continue-as-new")
	assert.Equal(t, r2, again, "reply after continue-as-new")
	// The conversation was carried forward.
	assert.Equal(t, "#2 one|two|three", sayNow("three").Text, "reply")
	require.NoError(t, e.rt.End(ctx, run.ID))
	res := e.result(run)
	assert.Equal(t, "#2 one|two|three", res.Text)
	assert.Equal(t, 3, res.Turns)
	assert.Equal(t, "chat", res.Agent)
	assert.Len(t, res.Messages, 6)
	assert.NotZero(t, res.Usage.TotalTokens, "usage lost over continue-as-new: %+v", res.Usage)
	_, err = say(ctx, e.rt, run.ID, "four")
	assert.ErrorIs(t, err, durable.ErrRunEnded, "say to an ended conversation")
	e.replays(a, run.ID)
}

// TestConversationEndsRightAfterContinue: End, sent when the run has just
// continued as new, completes it with the last exchange's result, not an
// empty one.
func TestConversationEndsRightAfterContinue(t *testing.T) {
	out, _ := agent.OutputOf[verdict]("verdict", "")
	_, model := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		return answer(fmt.Sprintf(`{"label":"ham","score":%d}`, turn)), nil
	})
	a := &agent.Agent{Name: "chat", Model: model, ConversationLimit: 1, Output: out}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "chat-2", agent.Input{Conversation: true, Message: "first"})
	for _, text := range []string{"second", "third"} {
		_, err := say(ctx, e.rt, run.ID, text)
		require.NoError(t, err)
	}
	eventually(t, "continue-as-new", func() bool {
		info, err := run.Describe(ctx)
		return err == nil && info.Generation == 3
	})
	require.NoError(t, e.rt.End(ctx, run.ID))
	res := e.result(run)
	assert.Equal(t, `{"label":"ham","score":2}`, res.Text)
	assert.Equal(t, 3, res.Turns)
	v, err := agent.OutputAs[verdict](res)
	require.NoError(t, err, "output")
	assert.Equal(t, 2, v.Score)
	e.replays(a, run.ID)
}

// TestConversationQueuedMessages: messages sent at once are answered in
// order, none lost over a continue-as-new.
func TestConversationQueuedMessages(t *testing.T) {
	_, a := echoAgent("chat", 2)
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "chat-3", agent.Input{Conversation: true})
	var ids []string
	for _, text := range []string{"a", "b", "c", "d", "e"} {
		id, err := e.rt.Send(ctx, run.ID, text)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	// The last reply is the proof that every message was answered in
	// order: each reply echoes the user messages the model saw.
	r, err := e.rt.Reply(ctx, run.ID, ids[4])
	require.NoError(t, err, "last reply")
	assert.Equal(t, "#4 a|b|c|d|e", r.Text, "last reply")
	require.NoError(t, e.rt.End(ctx, run.ID))
	assert.Equal(t, "#4 a|b|c|d|e", e.result(run).Text, "result")
	info, err := run.Describe(ctx)
	assert.NoError(t, err)
	assert.Equal(t, 2, info.Generation)
}

// TestConversationFailedExchange: an exchange that runs out of turns is
// reported in its reply; the session goes on.
func TestConversationFailedExchange(t *testing.T) {
	var s shop
	_, model := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		if lastUser(req) == "loop" {
			return toolTurn(call("lookup", `{"order":"A1"}`)), nil
		}
		return answer("fine"), nil
	})
	a := &agent.Agent{Name: "chat", Model: model, Tools: s.tools(t), MaxTurns: 2}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "chat-4", agent.Input{Conversation: true})
	r, err := say(ctx, e.rt, run.ID, "loop")
	if err != nil {
		e.dump()
	}
	require.NoError(t, err)
	assert.Empty(t, r.Text, "reply %+v, want the turn limit", r)
	assert.Contains(t, r.Error, "turn limit reached")
	r, err = say(ctx, e.rt, run.ID, "hello")
	require.NoError(t, err)
	assert.Equal(t, "fine", r.Text)
	assert.Empty(t, r.Error)
	require.NoError(t, e.rt.End(ctx, run.ID))
	assert.Equal(t, "fine", e.result(run).Text, "result")
	e.replays(a, run.ID)
}

// TestConversationHandoffCarriedOver: after a handoff, the conversation
// stays with the other agent, also across a continue-as-new.
func TestConversationHandoffCarriedOver(t *testing.T) {
	_, expertModel := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		return answer("expert: " + lastUser(req)), nil
	})
	expert := &agent.Agent{Name: "expert", Model: expertModel}
	_, frontModel := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		return toolTurn(call("transfer_to_expert", `{}`)), nil
	})
	front := &agent.Agent{Name: "front", Model: frontModel, Handoffs: []*agent.Agent{expert}, ConversationLimit: 1}
	e := newEnv(t, front)
	ctx := ctxT(t)
	run := e.startRun(front, "chat-5", agent.Input{Conversation: true})
	var got []string
	for _, text := range []string{"one", "two", "three"} {
		r, err := say(ctx, e.rt, run.ID, text)
		require.NoError(t, err)
		got = append(got, r.Agent+"="+r.Text)
	}
	want := []string{"expert=expert: one", "expert=expert: two", "expert=expert: three"}
	assert.Equal(t, want, got, "replies")
	require.NoError(t, e.rt.End(ctx, run.ID))
	res := e.result(run)
	assert.Equal(t, "expert", res.Agent)
	assert.Equal(t, "expert: three", res.Text)
	e.replays(front, run.ID)
}

// TestConversationUndecodableMessage: a message that does not decode is
// dropped; it neither fails the run nor counts as an exchange.
func TestConversationUndecodableMessage(t *testing.T) {
	_, a := echoAgent("chat", 2)
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "chat-6", agent.Input{Conversation: true})
	r, err := say(ctx, e.rt, run.ID, "one")
	require.NoError(t, err)
	assert.Equal(t, "#0 one", r.Text)
	require.NoError(t, e.rt.Client().Signal(ctx, run.ID, "cairn.message", []int{1, 2}))
	eventually(t, "the bad message in history", func() bool {
		return countEvents(e.history(run.ID), backend.EventSignalReceived) == 2
	})
	info, err := run.Describe(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, info.Generation, "after a bad message: %+v", info)
	assert.False(t, info.Status.Terminal(), "after a bad message: %+v", info)
	r, err = say(ctx, e.rt, run.ID, "two")
	require.NoError(t, err)
	assert.Equal(t, "#1 one|two", r.Text)
	eventually(t, "continue-as-new", func() bool {
		info, err := run.Describe(ctx)
		return err == nil && info.Generation == 1
	})
	require.NoError(t, e.rt.End(ctx, run.ID))
	assert.Equal(t, "#1 one|two", e.result(run).Text, "result")
}

// TestConversationRepliesAcrossContinue: every reply of the history that
// ended is found after a continue-as-new, not only the last one.
func TestConversationRepliesAcrossContinue(t *testing.T) {
	_, a := echoAgent("chat", 2)
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "chat-7", agent.Input{Conversation: true})
	var ids []string
	for _, text := range []string{"a", "b", "c"} {
		id, err := e.rt.Send(ctx, run.ID, text)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	r, err := e.rt.Reply(ctx, run.ID, ids[2])
	require.NoError(t, err, "reply c")
	assert.Equal(t, "#2 a|b|c", r.Text, "reply c")
	info, err := run.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, info.Generation, "the run should have continued as new")
	for i, want := range []string{"#0 a", "#1 a|b"} {
		r, err := e.rt.Reply(ctx, run.ID, ids[i])
		assert.NoError(t, err, "reply %d after continue-as-new", i)
		assert.Equal(t, want, r.Text, "reply %d after continue-as-new", i)
	}
	require.NoError(t, e.rt.End(ctx, run.ID))
	e.result(run)
	e.replays(a, run.ID)
}
