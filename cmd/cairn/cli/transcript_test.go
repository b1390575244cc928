package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// notesAgent answers each message of a conversation; its model sees at
// most four messages, the others are dropped, and its history starts
// afresh every two exchanges.
func notesAgent() *agent.Agent {
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		last := req.Messages[len(req.Messages)-1].Content
		return providers.Response{Message: providers.Message{Content: "Noted: " + last}}, nil
	})
	return &agent.Agent{Name: "notes", Model: model, ConversationLimit: 2,
		Memory: &memory.Policy{MaxMessages: 4, NoSummary: true}}
}

// TestTranscript prints the conversation of a run in progress and ended,
// with tool calls and results, and of a conversation that continued as
// new (its first messages read from the archive), as text and JSON; a
// program without the run's agent cannot read a run in progress, and says
// how to.
func TestTranscript(t *testing.T) {
	w := newWorld(t, supportAgent(), notesAgent())
	w.start(supportAgent(), "refund-1", agent.Input{Message: "My pizza came cold, refund my 120 euros."},
		backend.StatusAwaitingApproval)
	w.check("transcript_waiting", 0, "transcript", "refund-1")
	require.NoError(t, w.rt.Decide(traced(), "refund-1", agent.Decision{CallID: "call_1_0", Approved: true, By: "alice"}))
	w.waitStatus("refund-1", backend.StatusCompleted)
	w.check("transcript_done", 0, "transcript", "refund-1")

	w.start(notesAgent(), "notes-1", agent.Input{Conversation: true}, backend.StatusWaiting)
	for i := 1; i <= 5; i++ {
		id, err := w.rt.Send(traced(), "notes-1", fmt.Sprintf("note %d", i))
		require.NoError(t, err)
		_, err = w.rt.Reply(traced(), "notes-1", id)
		require.NoError(t, err)
	}
	info := w.waitStatus("notes-1", backend.StatusWaiting)
	require.Equal(t, 2, info.Generation, "the conversation continued as new")
	w.check("transcript_chat", 0, "transcript", "notes-1")

	r := w.cairn("transcript", "notes-1", "--json")
	require.Equal(t, 0, r.code, "transcript --json: exit status; stderr %q", r.err)
	var got []providers.Message
	sc := bufio.NewScanner(strings.NewReader(r.out))
	for sc.Scan() {
		var m providers.Message
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "transcript --json: line %q", sc.Text())
		got = append(got, m)
	}
	want, err := w.rt.Transcript(traced(), "notes-1")
	require.NoError(t, err)
	assert.Equal(t, want, got, "transcript --json: one message a line")
	assert.Len(t, got, 10, "transcript --json: five exchanges")

	bare := w.app
	bare.Agents = nil
	r = runApp(t, bare, "transcript", "notes-1")
	assert.Equal(t, 1, r.code, "transcript without the agent: exit status")
	golden(t, "transcript_unregistered", "$ cairn transcript notes-1 (no agents)\n--- stderr\n"+stable(r.err))
	r = runApp(t, bare, "transcript", "refund-1")
	assert.Equal(t, 0, r.code, "transcript of a completed run without the agent: exit status; stderr %q", r.err)
	assert.Equal(t, w.cairn("transcript", "refund-1").out, r.out, "transcript of a completed run without the agent")
	w.check("transcript_unknown", 1, "transcript", "no-such-run")
}
