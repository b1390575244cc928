package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
)

// PendingKind says what a pending call asks of a person.
type PendingKind string

// Kinds of pending calls.
const (
	KindApproval PendingKind = "approval" // approve or reject a tool call
	KindQuestion PendingKind = "question" // answer the model's question
)

// PendingCall is a tool call that waits for a person: a call to approve or
// reject, or a question to answer. Pending calls are read from the run's
// history, where the run recorded them.
type PendingCall struct {
	Kind  PendingKind `json:"kind"`
	RunID string      `json:"run_id"`
	Agent string      `json:"agent"`
	// Turn is the model turn whose call waits; CallID is the model's id
	// of the call, which names it in Decide and Answer.
	Turn      int    `json:"turn"`
	CallID    string `json:"call_id"`
	Tool      string `json:"tool"`
	Arguments string `json:"arguments,omitempty"`
	// Question is what the model asked, for KindQuestion.
	Question    string    `json:"question,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	// Deadline is when the agent's ApprovalPolicy decides in its place;
	// zero if never.
	Deadline time.Time `json:"deadline,omitzero"`
}

// Decision is a person's verdict on a request.
type Decision struct {
	// CallID is the model's id of the call (PendingCall.CallID).
	CallID   string
	Approved bool
	// By identifies the person; it is checked by the Authorizer and
	// recorded in the run's history.
	By string
	// Reason says why; a rejection's reason is told to the model.
	Reason string
}

// Answer is a person's answer to a question the model asked.
type Answer struct {
	// CallID is the model's id of the call that asked (PendingCall.CallID).
	CallID string
	// By identifies the person, as in Decision.
	By string
	// Text is the answer the model reads.
	Text string
}

// Authorizer decides whether the person by may decide (or answer) a
// request. It runs in the process that sends the decision, before it is
// sent; an error refuses it. It must be safe for concurrent use.
//
// It guards the Runtime's methods (and tools built on them), not the
// store: whoever can write to the store can send a run a signal directly,
// so give approvers the Runtime, not store credentials.
type Authorizer interface {
	Authorize(ctx context.Context, req PendingCall, by string) error
}

// AuthorizerFunc adapts a function to an Authorizer.
type AuthorizerFunc func(ctx context.Context, req PendingCall, by string) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, req PendingCall, by string) error {
	return f(ctx, req, by)
}

// RequireName is the default Authorizer: anyone may decide who says who
// they are (a non-empty name).
type RequireName struct{}

// Authorize refuses an empty name.
func (RequireName) Authorize(_ context.Context, _ PendingCall, by string) error {
	if by == "" {
		return errors.New("the decider's identity is required")
	}
	return nil
}

// Errors of approvals and answers.
var (
	// ErrNotPending means the run has no such call waiting: it was never
	// asked for, or was decided already.
	ErrNotPending = errors.New("no such pending request")
	// ErrNotAuthorized means the Authorizer refused the decision.
	ErrNotAuthorized = errors.New("not authorized")
)

// PendingFilter selects pending calls in Pending. Zero fields match
// everything.
type PendingFilter struct {
	// RunID limits the list to one run; empty means every run that may
	// wait for a person (awaiting approval, waiting, or running with a
	// call waiting while another call of its turn still runs).
	RunID string
	// Kind limits the list to approvals or to questions.
	Kind PendingKind
}

// Pending returns the calls that wait for a person: of one run, in the
// order the run made them, or across runs, oldest run first. A call whose
// decision or answer was sent but not yet taken in by the run is not
// pending.
func (rt *Runtime) Pending(ctx context.Context, f PendingFilter) ([]PendingCall, error) {
	if f.RunID != "" {
		calls, err := rt.pendingOf(ctx, f.RunID)
		return filterKind(calls, f.Kind), err
	}
	return rt.pendingAcross(ctx, f.Kind)
}

// filterKind keeps the calls of kind k; an empty k keeps them all.
func filterKind(calls []PendingCall, k PendingKind) []PendingCall {
	if k == "" {
		return calls
	}
	return slices.DeleteFunc(calls, func(c PendingCall) bool { return c.Kind != k })
}

// pendingOf returns the calls a run waits on, in the order they were made.
func (rt *Runtime) pendingOf(ctx context.Context, runID string) ([]PendingCall, error) {
	// The inbox is read before the history, so that a message moved from
	// one to the other in between is seen in the history.
	inbox, err := rt.store.ReadInbox(ctx, runID)
	if err != nil {
		return nil, err
	}
	history, err := rt.client.History(ctx, runID)
	if err != nil {
		return nil, err
	}
	info, err := rt.client.Describe(ctx, runID)
	if err != nil {
		return nil, err
	}
	if info.Status.Terminal() {
		return nil, nil
	}
	out := pendingIn(runID, history)
	// A decision or an answer waiting in the inbox (sent while no worker
	// holds the run, or just now) settles its request: another one would
	// be dropped by the run, so it must be refused.
	sent := rt.sentIn(inbox)
	return slices.DeleteFunc(out, func(r PendingCall) bool { return sent[sentKey{r.Kind, r.Turn, r.CallID}] }), nil
}

type sentKey struct {
	kind PendingKind
	turn int
	call string
}

// sentIn returns the requests that the decisions and answers in a run's
// inbox settle.
func (rt *Runtime) sentIn(inbox []backend.InboxEntry) map[sentKey]bool {
	sent := map[sentKey]bool{}
	for _, entry := range inbox {
		e, err := backend.DecodeEvent(entry.Event, rt.codec)
		if err != nil || e.Type != backend.EventSignalReceived {
			continue
		}
		var m struct {
			Turn   int    `json:"turn"`
			CallID string `json:"call_id"`
		}
		if json.Unmarshal(e.Payload, &m) != nil {
			continue
		}
		switch e.Name {
		case decisionSignal.Name():
			sent[sentKey{KindApproval, m.Turn, m.CallID}] = true
		case answerSignal.Name():
			sent[sentKey{KindQuestion, m.Turn, m.CallID}] = true
		}
	}
	return sent
}

// pendingIn reads the open requests out of a history.
func pendingIn(runID string, history []backend.Event) []PendingCall {
	type key struct {
		turn int
		call string
	}
	var order []key
	open := map[key]PendingCall{}
	for _, e := range history {
		if e.Type != backend.EventSideEffect {
			continue
		}
		var r record
		switch e.Name {
		case recApprovalRequested, recQuestionAsked, recApprovalDecided, recQuestionAnswered:
			if json.Unmarshal(e.Payload, &r) != nil {
				continue
			}
		default:
			continue
		}
		k := key{r.Turn, r.CallID}
		switch e.Name {
		case recApprovalRequested, recQuestionAsked:
			req := PendingCall{Kind: KindApproval, RunID: runID, Agent: r.Agent, Turn: r.Turn, CallID: r.CallID,
				Tool: r.Tool, Arguments: r.Arguments, RequestedAt: e.Time, Deadline: r.Deadline}
			if e.Name == recQuestionAsked {
				req.Kind, req.Question, req.Arguments = KindQuestion, r.Text, ""
			}
			order = append(order, k)
			open[k] = req
		default:
			delete(open, k)
		}
	}
	var out []PendingCall
	for _, k := range order {
		if r, ok := open[k]; ok {
			out = append(out, r)
			delete(open, k)
		}
	}
	return out
}

// pendingAcross returns the calls of a kind (any if empty) of the runs
// that may wait for a person: awaiting approval, waiting (a question), and
// running (a run whose turn has a call waiting for a person while another
// call of that turn still runs is reported as running until that call
// ends).
func (rt *Runtime) pendingAcross(ctx context.Context, kind PendingKind) ([]PendingCall, error) {
	statuses := []backend.Status{backend.StatusAwaitingApproval, backend.StatusRunning}
	if kind != KindApproval {
		statuses = append(statuses, backend.StatusWaiting)
	}
	var runs []backend.RunInfo
	seen := map[string]bool{}
	for _, s := range statuses {
		list, err := rt.client.ListRuns(ctx, backend.RunFilter{Status: s})
		if err != nil {
			return nil, err
		}
		for _, r := range list {
			if !seen[r.ID] { // it may have changed status between lists
				seen[r.ID] = true
				runs = append(runs, r)
			}
		}
	}
	slices.SortStableFunc(runs, func(a, b backend.RunInfo) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	var out []PendingCall
	for _, run := range runs {
		calls, err := rt.pendingOf(ctx, run.ID)
		if errors.Is(err, backend.ErrRunNotFound) {
			continue // expired since it was listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, filterKind(calls, kind)...)
	}
	return out, nil
}

// Decide sends a person's decision on a pending call of a run, after the
// Authorizer allowed it. It returns an error wrapping ErrNotPending if the
// run does not wait for that call, and ErrNotAuthorized if the Authorizer
// refused. The run need not be held by any worker: the decision waits in
// its inbox and takes effect when a worker picks the run up. A rejected
// call is not made; the model is told who rejected it and why.
func (rt *Runtime) Decide(ctx context.Context, runID string, d Decision) error {
	req, err := rt.find(ctx, runID, d.CallID, KindApproval)
	if err != nil {
		return err
	}
	if err := rt.auth.Authorize(ctx, req, d.By); err != nil {
		return fmt.Errorf("decide call %s of run %s: %w: %v", d.CallID, runID, ErrNotAuthorized, err)
	}
	msg := decisionMsg{Turn: req.Turn, CallID: d.CallID, Approved: d.Approved, By: d.By, Reason: d.Reason}
	return decisionSignal.Send(durable.WithSender(ctx, d.By), rt.client, runID, msg)
}

// Answer sends a person's answer to the question a pending call of a run
// asked (see AskHumanTool), after the Authorizer allowed it. Errors are
// those of Decide.
func (rt *Runtime) Answer(ctx context.Context, runID string, a Answer) error {
	req, err := rt.find(ctx, runID, a.CallID, KindQuestion)
	if err != nil {
		return err
	}
	if err := rt.auth.Authorize(ctx, req, a.By); err != nil {
		return fmt.Errorf("answer call %s of run %s: %w: %v", a.CallID, runID, ErrNotAuthorized, err)
	}
	msg := answerMsg{Turn: req.Turn, CallID: a.CallID, By: a.By, Text: a.Text}
	return answerSignal.Send(durable.WithSender(ctx, a.By), rt.client, runID, msg)
}

func (rt *Runtime) find(ctx context.Context, runID, callID string, kind PendingKind) (PendingCall, error) {
	reqs, err := rt.pendingOf(ctx, runID)
	if err != nil {
		return PendingCall{}, err
	}
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].CallID == callID && reqs[i].Kind == kind {
			return reqs[i], nil
		}
	}
	return PendingCall{}, fmt.Errorf("run %s, call %s: %w (%s)", runID, callID, ErrNotPending, kind)
}
