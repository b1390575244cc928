package agent_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

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
		if err != nil {
			t.Fatal(err)
		}
		if r.Error != "" || r.Agent != "chat" || r.MessageID == "" {
			t.Fatalf("reply %+v", r)
		}
		return r
	}
	if r := sayNow("one"); r.Text != "#0 one" {
		t.Fatalf("reply %q", r.Text)
	}
	id, err := e.rt.Send(ctx, run.ID, "two")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.rt.Reply(ctx, run.ID, id)
	if err != nil || r2.Text != "#1 one|two" {
		t.Fatalf("reply %+v, %v", r2, err)
	}
	// Two exchanges: the run starts a fresh history.
	eventually(t, "continue-as-new", func() bool {
		info, err := run.Describe(ctx)
		return err == nil && info.Generation == 1 && !info.Status.Terminal()
	})
	// The reply given just before is still found, in the new history.
	if again, err := e.rt.Reply(ctx, run.ID, id); err != nil || again != r2 {
		t.Fatalf("reply after continue-as-new %+v, %v; want %+v", again, err, r2)
	}
	// The conversation was carried forward.
	if r := sayNow("three"); r.Text != "#2 one|two|three" {
		t.Fatalf("reply %q", r.Text)
	}
	if err := e.rt.End(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	res := e.result(run)
	if res.Text != "#2 one|two|three" || res.Turns != 3 || res.Agent != "chat" {
		t.Fatalf("result %+v", res)
	}
	if got := len(res.Messages); got != 6 {
		t.Errorf("result has %d messages, want 6", got)
	}
	if res.Usage.TotalTokens == 0 {
		t.Errorf("usage lost over continue-as-new: %+v", res.Usage)
	}
	if _, err := say(ctx, e.rt, run.ID, "four"); !errors.Is(err, durable.ErrRunEnded) {
		t.Errorf("say to an ended conversation: %v, want ErrRunEnded", err)
	}
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
		if _, err := say(ctx, e.rt, run.ID, text); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "continue-as-new", func() bool {
		info, err := run.Describe(ctx)
		return err == nil && info.Generation == 3
	})
	if err := e.rt.End(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	res := e.result(run)
	if res.Text != `{"label":"ham","score":2}` || res.Turns != 3 {
		t.Fatalf("result %+v", res)
	}
	v, err := agent.OutputAs[verdict](res)
	if err != nil || v.Score != 2 {
		t.Fatalf("output %+v, %v", v, err)
	}
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
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// The last reply is the proof that every message was answered in
	// order: each reply echoes the user messages the model saw.
	r, err := e.rt.Reply(ctx, run.ID, ids[4])
	if err != nil || r.Text != "#4 a|b|c|d|e" {
		t.Fatalf("last reply %+v, %v", r, err)
	}
	if err := e.rt.End(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	if res := e.result(run); res.Text != "#4 a|b|c|d|e" {
		t.Fatalf("result %+v", res)
	}
	info, err := run.Describe(ctx)
	if err != nil || info.Generation != 2 {
		t.Errorf("generation %d, %v; want 2", info.Generation, err)
	}
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
		t.Fatal(err)
	}
	if r.Text != "" || !strings.Contains(r.Error, "turn limit reached") {
		t.Fatalf("reply %+v, want the turn limit", r)
	}
	if r, err := say(ctx, e.rt, run.ID, "hello"); err != nil || r.Text != "fine" || r.Error != "" {
		t.Fatalf("reply %+v, %v", r, err)
	}
	if err := e.rt.End(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	if res := e.result(run); res.Text != "fine" {
		t.Fatalf("result %+v", res)
	}
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
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Agent+"="+r.Text)
	}
	want := []string{"expert=expert: one", "expert=expert: two", "expert=expert: three"}
	if !slices.Equal(got, want) {
		t.Fatalf("replies %v, want %v", got, want)
	}
	if err := e.rt.End(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	if res := e.result(run); res.Agent != "expert" || res.Text != "expert: three" {
		t.Fatalf("result %+v", res)
	}
	e.replays(front, run.ID)
}

// TestConversationUndecodableMessage: a message that does not decode is
// dropped; it neither fails the run nor counts as an exchange.
func TestConversationUndecodableMessage(t *testing.T) {
	_, a := echoAgent("chat", 2)
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "chat-6", agent.Input{Conversation: true})
	if r, err := say(ctx, e.rt, run.ID, "one"); err != nil || r.Text != "#0 one" {
		t.Fatalf("reply %+v, %v", r, err)
	}
	if err := e.rt.Client().Signal(ctx, run.ID, "cairn.message", []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bad message in history", func() bool {
		return countEvents(e.history(run.ID), backend.EventSignalReceived) == 2
	})
	if info, err := run.Describe(ctx); err != nil || info.Generation != 0 || info.Status.Terminal() {
		t.Fatalf("after a bad message: %+v, %v", info, err)
	}
	if r, err := say(ctx, e.rt, run.ID, "two"); err != nil || r.Text != "#1 one|two" {
		t.Fatalf("reply %+v, %v", r, err)
	}
	eventually(t, "continue-as-new", func() bool {
		info, err := run.Describe(ctx)
		return err == nil && info.Generation == 1
	})
	if err := e.rt.End(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	if res := e.result(run); res.Text != "#1 one|two" {
		t.Fatalf("result %+v", res)
	}
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
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if r, err := e.rt.Reply(ctx, run.ID, ids[2]); err != nil || r.Text != "#2 a|b|c" {
		t.Fatalf("reply c %+v, %v", r, err)
	}
	if info, err := run.Describe(ctx); err != nil || info.Generation != 1 {
		t.Fatalf("generation %d, %v; want 1", info.Generation, err)
	}
	for i, want := range []string{"#0 a", "#1 a|b"} {
		r, err := e.rt.Reply(ctx, run.ID, ids[i])
		if err != nil || r.Text != want {
			t.Errorf("reply %d after continue-as-new: %+v, %v; want %q", i, r, err, want)
		}
	}
	if err := e.rt.End(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	e.result(run)
	e.replays(a, run.ID)
}
