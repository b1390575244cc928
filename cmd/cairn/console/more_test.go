package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/console"
	"github.com/cairn-dev/cairn/durable/backend"
)

// TestParked: a run parked by a divergence shows it as a diff, expected
// (history) against actual (code); once fixed code runs, it is resumed
// from its page.
func TestParked(t *testing.T) {
	w := newWorld(t, nil, console.Options{})
	ctx := context.Background()
	_, err := w.flow.Start(ctx, w.rt.Client(), "f-1", "x")
	require.NoError(t, err)
	w.waitStatus("f-1", backend.StatusWaiting)
	w.drift.Store(true)
	require.NoError(t, flowGo.Send(ctx, w.rt.Client(), "f-1", "ann"))
	w.waitStatus("f-1", backend.StatusParked)

	c := w.client()
	code, body := get(t, c, w.srv.URL+"/runs/f-1")
	require.Equal(t, http.StatusOK, code, body)
	for _, want := range []string{
		`<span id="run-status" class="status st-parked">parked</span>`,
		`<span class="diff-del">- expected (history): activity a (step 1)</span>`,
		`<span class="diff-add">&#43; actual   (code):    issued activity b (step 1)</span>`,
		`action="/runs/f-1/resume"`,
	} {
		assert.Contains(t, body, want)
	}
	_, body = get(t, c, w.srv.URL+"/runs?status=parked")
	assert.Equal(t, []string{"f-1"}, runIDs(body), "parked runs")

	w.drift.Store(false) // the fix is deployed
	token := csrfOf(t, c, w.srv.URL+"/runs/f-1")
	code, out := post(t, c, w.srv.URL+"/runs/f-1/resume", nil, "X-CSRF-Token", token)
	require.Equal(t, http.StatusOK, code, "%v", out)
	w.waitStatus("f-1", backend.StatusCompleted)
	res, err := w.flow.Get(w.rt.Client(), "f-1").Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "xa by ann", res)
}

// TestSend: a message is sent to a conversation from its page, as the
// identity, and its reply shows in the conversation.
func TestSend(t *testing.T) {
	w := newWorld(t, nil, console.Options{})
	ctx := context.Background()
	_, err := w.rt.Start(ctx, w.agents["chat"], "chat-1", agent.Input{Conversation: true})
	require.NoError(t, err)
	w.waitStatus("chat-1", backend.StatusWaiting)
	c := w.client()
	code, body := get(t, c, w.srv.URL+"/runs/chat-1")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `action="/runs/chat-1/send"`, "a conversation's form")
	token := csrfOf(t, c, w.srv.URL+"/runs/chat-1")
	code, out := post(t, c, w.srv.URL+"/runs/chat-1/send", url.Values{"text": {"Hello <b>there</b>"}}, "X-CSRF-Token", token)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Eventually(t, func() bool {
		_, body = get(t, c, w.srv.URL+"/runs/chat-1")
		return strings.Contains(body, "You said: Hello &lt;b&gt;there&lt;/b&gt;")
	}, 10*time.Second, 20*time.Millisecond, "the reply on the page")
	assert.Contains(t, body, `<div class="text">Hello &lt;b&gt;there&lt;/b&gt;</div>`, "the message on the page")
	h, err := w.rt.Client().History(ctx, "chat-1")
	require.NoError(t, err)
	var senders []string
	for _, e := range h {
		if e.Type == backend.EventSignalReceived {
			senders = append(senders, e.Sender)
		}
	}
	assert.Equal(t, []string{"alice"}, senders, "who sent the message")
	code, out = post(t, c, w.srv.URL+"/runs/chat-1/send", url.Values{"text": {" "}}, "X-CSRF-Token", token)
	assert.Equal(t, http.StatusBadRequest, code, "an empty message: %v", out)
}

// TestLongHistory: a run's page shows the latest events of a long
// history, and all of them when asked.
func TestLongHistory(t *testing.T) {
	w := newWorld(t, nil, console.Options{TimelineRows: 50})
	ctx := context.Background()
	_, err := w.rt.Start(ctx, w.agents["chat"], "chat-1", agent.Input{Conversation: true})
	require.NoError(t, err)
	w.waitStatus("chat-1", backend.StatusWaiting)
	for i := range 20 { // 4 events each
		id, err := w.rt.Send(ctx, "chat-1", "message "+strconv.Itoa(i))
		require.NoError(t, err)
		_, err = w.rt.Reply(ctx, "chat-1", id)
		require.NoError(t, err)
	}
	c := w.client()
	_, body := get(t, c, w.srv.URL+"/runs/chat-1")
	assert.Contains(t, body, `oldest events are not shown: <a href="/runs/chat-1?events=all">show all</a>`)
	assert.Equal(t, 50, strings.Count(body, `<tr class="ev `), "rows")
	assert.Contains(t, body, "You said: message 19", "the conversation is whole")
	assert.Contains(t, body, "You said: message 0", "the conversation is whole")
	_, body = get(t, c, w.srv.URL+"/runs/chat-1?events=all")
	assert.NotContains(t, body, "not shown")
	assert.Greater(t, strings.Count(body, `<tr class="ev `), 80, "rows of all events")
}

// TestContinuedConversation: a conversation that continued as new shows
// the messages it carried over, then the new ones.
func TestContinuedConversation(t *testing.T) {
	w := newWorld(t, nil, console.Options{})
	w.agents["chat"].ConversationLimit = 3
	ctx := context.Background()
	_, err := w.rt.Start(ctx, w.agents["chat"], "chat-1", agent.Input{Conversation: true})
	require.NoError(t, err)
	w.waitStatus("chat-1", backend.StatusWaiting)
	for i := range 5 {
		id, err := w.rt.Send(ctx, "chat-1", "message "+strconv.Itoa(i))
		require.NoError(t, err)
		_, err = w.rt.Reply(ctx, "chat-1", id)
		require.NoError(t, err)
	}
	_, body := get(t, w.client(), w.srv.URL+"/runs/chat-1")
	assert.Contains(t, body, "The run continued as new 1 times")
	for i := range 5 {
		assert.Contains(t, body, `<div class="text">You said: message `+strconv.Itoa(i)+`</div>`)
	}
}
