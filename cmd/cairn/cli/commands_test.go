package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// TestApprovalSession is an operator's session on a refund that waits for
// approval: list runs, show the run, list approvals, approve, see it done.
func TestApprovalSession(t *testing.T) {
	w := newWorld(t)
	w.start(supportAgent(), "refund-1", agent.Input{Message: "My pizza came cold, refund my 120 euros."},
		backend.StatusAwaitingApproval)

	w.check("runs", 0, "runs")
	w.check("runs_awaiting", 0, "runs", "--status", "awaiting_approval")
	w.check("runs_none", 0, "runs", "--status", "failed")
	w.check("show_waiting", 0, "show", "refund-1")
	r := w.check("approvals", 0, "approvals")
	require.Contains(t, r.out, "call_1_0", "approvals do not list the refund's call")
	w.check("approve", 0, "approve", "refund-1", "call_1_0", "--by", "alice@example.com", "--reason", "receipt checked")
	w.waitStatus("refund-1", backend.StatusCompleted)
	w.check("show_done", 0, "show", "refund-1")
	w.check("approvals_none", 0, "approvals")
	w.check("approve_again", 1, "approve", "refund-1", "call_1_0", "--by", "alice@example.com")
}

func TestReject(t *testing.T) {
	w := newWorld(t)
	w.start(supportAgent(), "refund-2", agent.Input{Message: "Refund 120 euros."}, backend.StatusAwaitingApproval)
	w.check("reject_no_reason", 2, "reject", "refund-2", "call_1_0", "--by", "bob")
	w.check("reject", 0, "reject", "refund-2", "call_1_0", "--by", "bob", "--reason", "over the limit")
	w.waitStatus("refund-2", backend.StatusCompleted)
	res, err := w.rt.Run("refund-2").Result(traced())
	require.NoError(t, err)
	assert.Contains(t, res.Text, "over the limit", "the model was not told the reason")
}

func TestJSONOutput(t *testing.T) {
	w := newWorld(t)
	w.start(supportAgent(), "refund-3", agent.Input{Message: "Refund 120 euros."}, backend.StatusAwaitingApproval)
	r := w.cairn("runs", "--json")
	var info backend.RunInfo
	assert.Equal(t, 0, r.code, "runs --json: exit status; stderr %q", r.err)
	assert.NoError(t, json.Unmarshal([]byte(r.out), &info), "runs --json: %q", r.out)
	assert.Equal(t, "refund-3", info.ID, "runs --json")
	assert.Equal(t, backend.StatusAwaitingApproval, info.Status, "runs --json")
	r = w.cairn("show", "refund-3", "--json")
	var shown struct {
		Run     backend.RunInfo `json:"run"`
		History []backend.Event `json:"history"`
	}
	assert.Equal(t, 0, r.code, "show --json: exit status; stderr %q", r.err)
	assert.NoError(t, json.Unmarshal([]byte(r.out), &shown), "show --json: %q", r.out)
	assert.Equal(t, "refund-3", shown.Run.ID, "show --json")
	assert.Len(t, shown.History, int(shown.Run.HistoryLen), "show --json: the history, as long as the run says")
	r = w.cairn("approvals", "--json")
	var req agent.PendingCall
	assert.Equal(t, 0, r.code, "approvals --json: exit status; stderr %q", r.err)
	assert.NoError(t, json.Unmarshal([]byte(r.out), &req), "approvals --json: %q", r.out)
	assert.Equal(t, "refund-3", req.RunID, "approvals --json")
	assert.Equal(t, "refund", req.Tool, "approvals --json")
}

func TestSignalSendCancel(t *testing.T) {
	w := newWorld(t)
	w.start(chatAgent(), "chat-1", agent.Input{Conversation: true}, backend.StatusWaiting)
	w.check("send", 0, "send", "chat-1", "hello there", "--reply")
	w.check("signal_bad_json", 2, "signal", "chat-1", "cairn.message", "{not json")
	w.check("signal", 0, "signal", "chat-1", "nudge", `{"x":1}`, "--by", "ops")
	w.check("cancel", 0, "cancel", "chat-1", "--by", "ops")
	w.waitStatus("chat-1", backend.StatusCanceled)
	w.check("cancel_ended", 1, "cancel", "chat-1")
	history, err := w.rt.Run("chat-1").History(traced())
	require.NoError(t, err)
	var senders []string
	for _, e := range history {
		if e.Type == backend.EventSignalReceived && e.Name == "nudge" || e.Type == backend.EventCancelRequested {
			senders = append(senders, e.Sender)
		}
	}
	assert.Equal(t, []string{"ops", "ops"}, senders, "senders recorded")
}

func TestHistoryExport(t *testing.T) {
	w := newWorld(t)
	w.start(chatAgent(), "chat-2", agent.Input{Conversation: true}, backend.StatusWaiting)
	r := w.cairn("history", "export", "chat-2")
	history, err := backend.UnmarshalHistory(strings.NewReader(r.out))
	require.Equal(t, 0, r.code, "history export: exit status\n%s%s", r.out, r.err)
	require.NoError(t, err, "history export:\n%s", r.out)
	require.NotEmpty(t, history, "history export")
	require.Equal(t, "chat", history[0].Name, "history export: the first event")
	assert.NoError(t, durable.ReplayHistory(w.rt.Workflow(chatAgent()), history), "the exported history does not replay")
}

func TestErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.check("unknown_run", 1, "show", "no-such-run")
	w.check("unknown_command", 2, "frobnicate")
	w.check("bad_flag", 2, "runs", "--colour", "red")
	w.check("bad_status", 2, "runs", "--status", "sleeping")
	w.check("missing_args", 2, "approve", "refund-1")
	w.check("no_by", 2, "approve", "refund-1", "call_1_0")
	w.check("resume_not_parked", 1, "resume", "no-such-run")
	w.check("help", 0, "--help")
	w.check("help_show", 0, "show", "--help")

	down := runApp(t, w.app, "runs", "--redis", "redis://127.0.0.1:1/0")
	assert.Equal(t, 1, down.code, "unreachable Redis: exit status")
	assert.Contains(t, down.err, "cannot reach Redis at redis://127.0.0.1:1/0", "unreachable Redis")
	none := w.app
	none.Getenv = func(string) string { return "" }
	r := runApp(t, none, "runs")
	assert.Equal(t, 2, r.code, "no Redis given: exit status")
	assert.Contains(t, r.err, "no Redis", "no Redis given")
}

// TestResume: a run parked by code that cannot replay it is shown parked
// with the divergence; after a fix is deployed, resume tries it again.
func TestResume(t *testing.T) {
	w := newWorld(t)
	w.startWorkerWith(flowV1())
	w.startFlow(flowV1(), "flow-1")
	w.startWorkerWith(flowV2()) // an incompatible deploy
	require.NoError(t, approveSignal.Send(traced(), w.rt.Client(), "flow-1", "ann"))
	w.waitStatus("flow-1", backend.StatusParked)
	w.check("runs_parked", 0, "runs", "--status", "parked")
	w.check("show_parked", 0, "show", "flow-1")
	before := w.waitStatus("flow-1", backend.StatusParked)
	w.check("resume", 0, "resume", "flow-1")
	// Still the same code: tried again (the request is answered, it
	// leaves the inbox), parked again.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		info, err := w.rt.Run("flow-1").Describe(traced())
		require.NoError(c, err)
		inbox, err := w.store.ReadInbox(traced(), "flow-1")
		require.NoError(c, err)
		for _, entry := range inbox {
			e, _ := backend.DecodeEvent(entry.Event, nil)
			assert.NotEqual(c, backend.EventResumeRequested, e.Type, "the resume request is still in the inbox")
		}
		assert.Equal(c, backend.StatusParked, info.Status)
		assert.Greater(c, info.Version, before.Version, "the run's version: not tried again")
	}, 10*time.Second, 2*time.Millisecond, "resume did not try the run again")

	// The fix, guarded by a version: a worker that starts tries parked
	// runs again by itself.
	w.startWorkerWith(flowV3())
	w.waitStatus("flow-1", backend.StatusCompleted)
	w.check("resume_done", 1, "resume", "flow-1")
}

// askAgent asks a person a question, then answers with what it was told.
func askAgent() *agent.Agent {
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		if scripted.Turn(req) == 0 {
			return calls(providers.ToolCall{Name: agent.AskHumanTool, Arguments: `{"question":"Which address?"}`}), nil
		}
		last := req.Messages[len(req.Messages)-1].Content
		return providers.Response{Message: providers.Message{Content: "Told: " + last}}, nil
	})
	return &agent.Agent{Name: "asker", Model: model, AskHuman: true}
}

// formAgent calls a tool that asks a person to fill a form (as an MCP
// server's elicitation does), then answers with the tool's result.
func formAgent() *agent.Agent {
	seat := tools.MustNew("seat", "Choose a seat.", func(ctx context.Context, _ struct{}) (string, error) {
		in, _ := tools.InputFrom(ctx)
		r, ok := in.Response("seat")
		if !ok {
			return "", tools.NeedInput("", tools.InputRequest{ID: "seat", Kind: tools.InputElicitation, Message: "Aisle or window?",
				Schema: json.RawMessage(`{"type":"object","properties":{"seat":{"enum":["aisle","window"]}},"required":["seat"]}`)})
		}
		return r.Action + " " + string(r.Content), nil
	})
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		if scripted.Turn(req) == 0 {
			return calls(providers.ToolCall{Name: "seat", Arguments: `{}`}), nil
		}
		return providers.Response{Message: providers.Message{Content: "Seat: " + req.Messages[len(req.Messages)-1].Content}}, nil
	})
	set, err := tools.NewSet(seat)
	if err != nil {
		panic(err)
	}
	return &agent.Agent{Name: "seater", Model: model, Tools: set}
}

// TestToolQuestions: a tool's question is listed with its schema, an
// answer that breaks it is refused, and --action declines.
func TestToolQuestions(t *testing.T) {
	w := newWorld(t, formAgent())
	w.start(formAgent(), "form-1", agent.Input{Message: "Seat me."}, backend.StatusWaiting)
	w.check("questions_form", 0, "questions")
	w.check("answer_form_bad", 1, "answer", "form-1", "call_0_0", `{"seat":"roof"}`, "--by", "carol")
	w.check("answer_form_both", 2, "answer", "form-1", "call_0_0", `{"seat":"aisle"}`, "--by", "carol", "--action", "decline")
	w.check("answer_form_decline", 0, "answer", "form-1", "call_0_0", "--by", "carol", "--action", "decline")
	w.waitStatus("form-1", backend.StatusCompleted)
	res, err := w.rt.Run("form-1").Result(traced())
	require.NoError(t, err)
	assert.Equal(t, `Seat: "decline "`, res.Text)
}

func TestQuestions(t *testing.T) {
	w := newWorld(t, askAgent())
	w.start(askAgent(), "ask-1", agent.Input{Message: "Deliver my pizza."}, backend.StatusWaiting)
	w.check("questions", 0, "questions")
	w.check("answer_no_by", 2, "answer", "ask-1", "call_0_0", "12 Via Roma")
	w.check("answer", 0, "answer", "ask-1", "call_0_0", "12 Via Roma", "--by", "carol")
	w.waitStatus("ask-1", backend.StatusCompleted)
	w.check("questions_none", 0, "questions")
	res, err := w.rt.Run("ask-1").Result(traced())
	require.NoError(t, err)
	assert.Contains(t, res.Text, "12 Via Roma", "the model was not told the answer")
}
