package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
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
	if !strings.Contains(r.out, "call_1_0") {
		t.Fatalf("approvals do not list the refund's call:\n%s", r.out)
	}
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
	if err != nil || !strings.Contains(res.Text, "over the limit") {
		t.Errorf("the model was not told the reason: %+v, %v", res, err)
	}
}

func TestJSONOutput(t *testing.T) {
	w := newWorld(t)
	w.start(supportAgent(), "refund-3", agent.Input{Message: "Refund 120 euros."}, backend.StatusAwaitingApproval)
	r := w.cairn("runs", "--json")
	var info backend.RunInfo
	if r.code != 0 || json.Unmarshal([]byte(r.out), &info) != nil || info.ID != "refund-3" || info.Status != backend.StatusAwaitingApproval {
		t.Errorf("runs --json: %d %q %q", r.code, r.out, r.err)
	}
	r = w.cairn("show", "refund-3", "--json")
	var shown struct {
		Run     backend.RunInfo `json:"run"`
		History []backend.Event `json:"history"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.out), &shown) != nil || shown.Run.ID != "refund-3" || len(shown.History) != int(shown.Run.HistoryLen) {
		t.Errorf("show --json: %d %q %q", r.code, r.out, r.err)
	}
	r = w.cairn("approvals", "--json")
	var req agent.PendingCall
	if r.code != 0 || json.Unmarshal([]byte(r.out), &req) != nil || req.RunID != "refund-3" || req.Tool != "refund" {
		t.Errorf("approvals --json: %d %q %q", r.code, r.out, r.err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	var senders []string
	for _, e := range history {
		if e.Type == backend.EventSignalReceived && e.Name == "nudge" || e.Type == backend.EventCancelRequested {
			senders = append(senders, e.Sender)
		}
	}
	if strings.Join(senders, ",") != "ops,ops" {
		t.Errorf("senders recorded %v, want ops twice", senders)
	}
}

func TestHistoryExport(t *testing.T) {
	w := newWorld(t)
	w.start(chatAgent(), "chat-2", agent.Input{Conversation: true}, backend.StatusWaiting)
	r := w.cairn("history", "export", "chat-2")
	history, err := backend.UnmarshalHistory(strings.NewReader(r.out))
	if r.code != 0 || err != nil || len(history) == 0 || history[0].Name != "chat" {
		t.Fatalf("history export: %d %v\n%s%s", r.code, err, r.out, r.err)
	}
	if err := durable.ReplayHistory(w.rt.Workflow(chatAgent()), history); err != nil {
		t.Errorf("the exported history does not replay: %v", err)
	}
}

func TestErrors(t *testing.T) {
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
	if down.code != 1 || !strings.Contains(down.err, "cannot reach Redis at redis://127.0.0.1:1/0") {
		t.Errorf("unreachable Redis: exit %d, %q", down.code, down.err)
	}
	none := w.app
	none.Getenv = func(string) string { return "" }
	if r := runApp(t, none, "runs"); r.code != 2 || !strings.Contains(r.err, "no Redis") {
		t.Errorf("no Redis given: exit %d, %q", r.code, r.err)
	}
}

// TestResume: a run parked by code that cannot replay it is shown parked
// with the divergence; after a fix is deployed, resume tries it again.
func TestResume(t *testing.T) {
	w := newWorld(t)
	w.startWorkerWith(flowV1())
	w.startFlow(flowV1(), "flow-1")
	w.startWorkerWith(flowV2()) // an incompatible deploy
	if err := approveSignal.Send(traced(), w.rt.Client(), "flow-1", "ann"); err != nil {
		t.Fatal(err)
	}
	w.waitStatus("flow-1", backend.StatusParked)
	w.check("runs_parked", 0, "runs", "--status", "parked")
	w.check("show_parked", 0, "show", "flow-1")
	before := w.waitStatus("flow-1", backend.StatusParked)
	w.check("resume", 0, "resume", "flow-1")
	// Still the same code: tried again (the request is answered, it
	// leaves the inbox), parked again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := w.rt.Run("flow-1").Describe(traced())
		inbox, ierr := w.store.ReadInbox(traced(), "flow-1")
		answered := ierr == nil
		for _, entry := range inbox {
			if e, _ := backend.DecodeEvent(entry.Event, nil); e.Type == backend.EventResumeRequested {
				answered = false
			}
		}
		if err == nil && answered && info.Status == backend.StatusParked && info.Version > before.Version {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resume did not try the run again: %+v, %v, inbox %d entries (%v)", info, err, len(inbox), ierr)
		}
		time.Sleep(2 * time.Millisecond)
	}

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

func TestQuestions(t *testing.T) {
	w := newWorld(t, askAgent())
	w.start(askAgent(), "ask-1", agent.Input{Message: "Deliver my pizza."}, backend.StatusWaiting)
	w.check("questions", 0, "questions")
	w.check("answer_no_by", 2, "answer", "ask-1", "call_0_0", "12 Via Roma")
	w.check("answer", 0, "answer", "ask-1", "call_0_0", "12 Via Roma", "--by", "carol")
	w.waitStatus("ask-1", backend.StatusCompleted)
	w.check("questions_none", 0, "questions")
	res, err := w.rt.Run("ask-1").Result(traced())
	if err != nil || !strings.Contains(res.Text, "12 Via Roma") {
		t.Errorf("the model was not told the answer: %+v, %v", res, err)
	}
}
