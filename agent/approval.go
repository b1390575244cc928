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

// RequestKind says what a pending request asks of a person.
type RequestKind string

// Request kinds.
const (
	KindApproval RequestKind = "approval" // approve or reject a tool call
	KindQuestion RequestKind = "question" // answer the model's question
)

// Request is a tool call that waits for a person: a call to approve or
// reject, or a question to answer. Requests are read from the run's
// history, where the run recorded them.
type Request struct {
	Kind  RequestKind `json:"kind"`
	RunID string      `json:"run_id"`
	Agent string      `json:"agent"`
	// Turn is the model turn whose call waits; CallID is the model's id
	// of the call, which names it in Approve, Reject and Answer.
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
	Approved bool
	// By identifies the person; it is checked by the Authorizer and
	// recorded in the run's history.
	By string
	// Reason says why; a rejection's reason is told to the model.
	Reason string
}

// Authorizer decides whether the person by may decide (or answer) a
// request. It runs in the process that sends the decision, before it is
// sent; an error refuses it. It must be safe for concurrent use.
//
// It guards the Runtime's methods (and tools built on them), not the
// store: whoever can write to the store can send a run a signal directly,
// so give approvers the Runtime, not store credentials.
type Authorizer interface {
	Authorize(ctx context.Context, req Request, by string) error
}

// AuthorizerFunc adapts a function to an Authorizer.
type AuthorizerFunc func(ctx context.Context, req Request, by string) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, req Request, by string) error {
	return f(ctx, req, by)
}

// RequireName is the default Authorizer: anyone may decide who says who
// they are (a non-empty name).
type RequireName struct{}

// Authorize refuses an empty name.
func (RequireName) Authorize(_ context.Context, _ Request, by string) error {
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

// Pending returns the requests a run waits on, in the order they were
// made.
func (rt *Runtime) Pending(ctx context.Context, runID string) ([]Request, error) {
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
	return slices.DeleteFunc(out, func(r Request) bool { return sent[sentKey{r.Kind, r.Turn, r.CallID}] }), nil
}

type sentKey struct {
	kind RequestKind
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
func pendingIn(runID string, history []backend.Event) []Request {
	type key struct {
		turn int
		call string
	}
	var order []key
	open := map[key]Request{}
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
			req := Request{Kind: KindApproval, RunID: runID, Agent: r.Agent, Turn: r.Turn, CallID: r.CallID,
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
	var out []Request
	for _, k := range order {
		if r, ok := open[k]; ok {
			out = append(out, r)
			delete(open, k)
		}
	}
	return out
}

// Approvals returns the tool calls waiting for approval across all runs,
// oldest run first.
func (rt *Runtime) Approvals(ctx context.Context) ([]Request, error) {
	return rt.pendingAcross(ctx, KindApproval, backend.StatusAwaitingApproval)
}

// Questions returns the questions waiting for an answer across all runs,
// oldest run first.
func (rt *Runtime) Questions(ctx context.Context) ([]Request, error) {
	return rt.pendingAcross(ctx, KindQuestion, backend.StatusWaiting, backend.StatusAwaitingApproval)
}

// pendingAcross returns the requests of a kind of the runs in the given
// statuses, and of the running ones: a run whose turn has a call waiting
// for a person while another call of that turn still runs is reported as
// running until that call ends.
func (rt *Runtime) pendingAcross(ctx context.Context, kind RequestKind, statuses ...backend.Status) ([]Request, error) {
	var runs []backend.RunInfo
	seen := map[string]bool{}
	for _, s := range append(statuses, backend.StatusRunning) {
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
	var out []Request
	for _, run := range runs {
		reqs, err := rt.Pending(ctx, run.ID)
		if errors.Is(err, backend.ErrRunNotFound) {
			continue // expired since it was listed
		}
		if err != nil {
			return nil, err
		}
		for _, r := range reqs {
			if r.Kind == kind {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Approve approves a pending tool call of a run (see Decide).
func (rt *Runtime) Approve(ctx context.Context, runID, callID, by, reason string) error {
	return rt.Decide(ctx, runID, callID, Decision{Approved: true, By: by, Reason: reason})
}

// Reject rejects a pending tool call of a run (see Decide). The model is
// told that the call was rejected, by whom and why.
func (rt *Runtime) Reject(ctx context.Context, runID, callID, by, reason string) error {
	return rt.Decide(ctx, runID, callID, Decision{Approved: false, By: by, Reason: reason})
}

// Decide sends a decision on the pending call callID of a run, after the
// Authorizer allowed it. It returns an error wrapping ErrNotPending if the
// run does not wait for that call, and ErrNotAuthorized if the Authorizer
// refused. The run need not be held by any worker: the decision waits in
// its inbox and takes effect when a worker picks the run up.
func (rt *Runtime) Decide(ctx context.Context, runID, callID string, d Decision) error {
	req, err := rt.find(ctx, runID, callID, KindApproval)
	if err != nil {
		return err
	}
	if err := rt.auth.Authorize(ctx, req, d.By); err != nil {
		return fmt.Errorf("decide call %s of run %s: %w: %v", callID, runID, ErrNotAuthorized, err)
	}
	msg := decisionMsg{Turn: req.Turn, CallID: callID, Approved: d.Approved, By: d.By, Reason: d.Reason}
	return decisionSignal.Send(durable.WithSender(ctx, d.By), rt.client, runID, msg)
}

// Answer answers the question that call callID of a run asked, after the
// Authorizer allowed the person by to.
func (rt *Runtime) Answer(ctx context.Context, runID, callID, by, answer string) error {
	req, err := rt.find(ctx, runID, callID, KindQuestion)
	if err != nil {
		return err
	}
	if err := rt.auth.Authorize(ctx, req, by); err != nil {
		return fmt.Errorf("answer call %s of run %s: %w: %v", callID, runID, ErrNotAuthorized, err)
	}
	msg := answerMsg{Turn: req.Turn, CallID: callID, By: by, Text: answer}
	return answerSignal.Send(durable.WithSender(ctx, by), rt.client, runID, msg)
}

func (rt *Runtime) find(ctx context.Context, runID, callID string, kind RequestKind) (Request, error) {
	reqs, err := rt.Pending(ctx, runID)
	if err != nil {
		return Request{}, err
	}
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].CallID == callID && reqs[i].Kind == kind {
			return reqs[i], nil
		}
	}
	return Request{}, fmt.Errorf("run %s, call %s: %w (%s)", runID, callID, ErrNotPending, kind)
}
