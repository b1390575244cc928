package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
)

// Reply is a conversation's answer to a message.
type Reply struct {
	MessageID string `json:"message_id"`
	Agent     string `json:"agent"`
	Text      string `json:"text"`
	// Error says why the exchange failed (the turn limit, an invalid
	// structured answer); the conversation goes on.
	Error string `json:"error,omitempty"`
}

// Send sends a user message to a conversation run (one started with
// Input.Conversation) and returns the message's id, which names its reply.
func (rt *Runtime) Send(ctx context.Context, runID, text string) (string, error) {
	if text == "" {
		return "", errors.New("agent: send: empty message")
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if err := messageSignal.Send(ctx, rt.client, runID, userMessage{ID: id, Text: text}); err != nil {
		return "", err
	}
	return id, nil
}

// End ends a conversation run: it completes with the last exchange's
// result once the messages sent before are answered.
func (rt *Runtime) End(ctx context.Context, runID string) error {
	return messageSignal.Send(ctx, rt.client, runID, userMessage{End: true})
}

// Reply waits for the reply to the message messageID of a conversation
// run, reading it from the run's history.
func (rt *Runtime) Reply(ctx context.Context, runID, messageID string) (Reply, error) {
	for {
		info, err := rt.client.Describe(ctx, runID)
		if err != nil {
			return Reply{}, err
		}
		history, err := rt.client.History(ctx, runID)
		if err != nil {
			return Reply{}, err
		}
		for _, e := range history {
			var r record
			if e.Type == backend.EventSideEffect && e.Name == recReply &&
				json.Unmarshal(e.Payload, &r) == nil && r.MessageID == messageID {
				return Reply{MessageID: messageID, Agent: r.Agent, Text: r.Text, Error: r.Error}, nil
			}
		}
		if info.Status.Terminal() {
			return Reply{}, fmt.Errorf("run %s: no reply to message %s: %w (%s)", runID, messageID, durable.ErrRunEnded, info.Status)
		}
		// The reply may come in a step of a run that keeps running.
		if err := rt.client.WaitCommit(ctx, info); err != nil {
			return Reply{}, err
		}
	}
}
