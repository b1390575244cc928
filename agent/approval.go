package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
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
	// Question is what the model asked, for KindQuestion, or what a
	// tool asks (an MCP server's elicitation, while it serves the call):
	// then Schema is the JSON Schema of the object the answer must be,
	// or URL a page the person is asked to visit (see Answer).
	Question    string          `json:"question,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	URL         string          `json:"url,omitempty"`
	RequestedAt time.Time       `json:"requested_at"`
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
	// Text is the answer the model reads. To a tool's question with a
	// Schema (PendingCall.Schema), it is a JSON object valid against
	// that schema, which the tool reads; to one with a URL, it is
	// ignored.
	Text string
	// Action answers a tool's question (one with a Schema or a URL):
	// empty or tools.ActionAccept gives Text; tools.ActionDecline and
	// tools.ActionCancel refuse, or dismiss, the request (MCP's
	// elicitation actions), and the tool is told so. A question of the
	// model's (ask_human) takes no Action.
	Action string
}

// Authorizer decides whether the person by may decide (or answer) a
// request. It runs in the process that sends the decision, before it is
// sent; an error refuses it. It runs again in the worker that takes the
// decision into the run's history (give workers the same Authorizer): a
// decision it refuses there is recorded as refused (decision_refused, with
// who and the error's text) and the call keeps waiting, so a client that
// skips the check cannot decide. There its ctx carries no values of the
// sender's and a 10 s deadline, and its verdict is journaled: it must
// decide from req and by. It must be safe for concurrent use.
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

// RunAction names what a person does to a run besides deciding or
// answering its requests.
type RunAction string

// Run actions.
const (
	RunCancel RunAction = "cancel" // ask the run to cancel
	RunResume RunAction = "resume" // try a parked run again
	RunSend   RunAction = "send"   // send a conversation a message
)

// RunAuthorizer is an optional capability of an Authorizer: it decides
// whether the person by may take action on run, whose record it is given.
// Runtime.AuthorizeRun asks it; front ends that act for people (cairn ui)
// call AuthorizeRun before they cancel, resume or send. Without it, any
// non-empty name may. It must be safe for concurrent use.
type RunAuthorizer interface {
	AuthorizeRun(ctx context.Context, run backend.RunInfo, action RunAction, by string) error
}

// AuthorizeRun checks, with the runtime's Authorizer if it is a
// RunAuthorizer, that the person by may take action on the run runID. It
// returns an error wrapping ErrNotAuthorized if not (an empty by never
// may), and backend.ErrRunNotFound for an unknown run. It only checks:
// the caller then acts (Runtime.Send, Client().Cancel, Client().Resume).
func (rt *Runtime) AuthorizeRun(ctx context.Context, runID string, action RunAction, by string) error {
	if by == "" {
		return fmt.Errorf("agent: %s %s: %w: a name is required", action, runID, ErrNotAuthorized)
	}
	ra, ok := rt.auth.(RunAuthorizer)
	if !ok {
		return nil
	}
	info, err := rt.client.Describe(ctx, runID)
	if err != nil {
		return fmt.Errorf("agent: %s %s: %w", action, runID, err)
	}
	if err := ra.AuthorizeRun(ctx, info, action, by); err != nil {
		return fmt.Errorf("agent: %s %s by %s: %w: %w", action, runID, by, ErrNotAuthorized, err)
	}
	return nil
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
	// ErrInvalidAnswer means an answer does not fit its question: it
	// breaks the requested schema, or names an unknown action. The
	// question still waits; answer again.
	ErrInvalidAnswer = errors.New("invalid answer")
)

// PendingFilter selects pending calls in Pending. Zero fields match
// everything.
type PendingFilter struct {
	// RunID limits the list to one run; empty means every run with a
	// call that waits for a person, whatever its status (a run whose turn
	// has a call waiting while another call of that turn still runs is
	// running).
	RunID string
	// Kind limits the list to approvals or to questions.
	Kind PendingKind
}

// Pending returns the calls that wait for a person: of one run, in the
// order the run made them, or across runs, oldest run first. A call whose
// decision or answer was sent but not yet taken in by the run is not
// pending.
//
// A run publishes its waiting calls with its record (durable.SetAwaiting),
// where the store indexes them, so the list across runs costs a few round
// trips to the store however many runs wait; a run with messages in its
// inbox, or whose calls' arguments are too long to publish, costs a read
// of its history as well. Runs that started waiting under a cairn older
// than this index are listed once a worker has replayed them (a message,
// a timeout); Pending with their RunID, Decide and Answer find their calls
// at any time.
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

// maxAwaitingArgs bounds the arguments (or question) of a call that a run
// publishes with its record; longer ones are read from its history.
const maxAwaitingArgs = 2048

// awaitingCall is a pending call as a run publishes it (see
// turnTools.open): Cut marks one published without its arguments or
// question, too long to keep in the record.
type awaitingCall struct {
	PendingCall
	Cut bool `json:"cut,omitempty"`
}

// awaitingIn returns the calls a run published with its record, with ok
// false if they cannot stand for its history's: it published none, one
// was cut, or they do not decode (they are read from the history then).
func (rt *Runtime) awaitingIn(info backend.RunInfo) ([]PendingCall, bool) {
	if len(info.Awaiting) == 0 {
		return nil, false
	}
	data, err := backend.DecodePayload(info.Awaiting, rt.codec)
	if err != nil {
		return nil, false
	}
	var published []awaitingCall
	if err := json.Unmarshal(data, &published); err != nil {
		return nil, false
	}
	calls := make([]PendingCall, len(published))
	for i, c := range published {
		if c.Cut {
			return nil, false
		}
		calls[i] = c.PendingCall
		calls[i].RunID = info.ID
	}
	return calls, true
}

// pendingOf returns the calls a run waits on, in the order they were made:
// those its record publishes when its inbox is empty (one round trip),
// else those its history holds.
func (rt *Runtime) pendingOf(ctx context.Context, runID string) ([]PendingCall, error) {
	info, err := rt.client.Describe(ctx, runID)
	if err != nil {
		return nil, err
	}
	if info.Status.Terminal() {
		return nil, nil
	}
	if calls, ok := rt.awaitingIn(info); ok && info.Inbox == 0 {
		return calls, nil
	}
	return rt.pendingInHistory(ctx, runID)
}

// pendingInHistory returns the calls a run waits on as its history and
// inbox say.
func (rt *Runtime) pendingInHistory(ctx context.Context, runID string) ([]PendingCall, error) {
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
				req.Kind, req.Question, req.Schema, req.URL = KindQuestion, r.Text, r.Schema, r.URL
				if r.Input == "" {
					req.Arguments = "" // the model's question: its arguments are the question
				}
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
// that publish calls waiting for a person (durable.SetAwaiting).
func (rt *Runtime) pendingAcross(ctx context.Context, kind PendingKind) ([]PendingCall, error) {
	runs, err := rt.awaitingRuns(ctx)
	if err != nil {
		return nil, err
	}
	// Decoding is most of the work: it is shared out among the CPUs.
	published := make([][]PendingCall, len(runs))
	usable := make([]bool, len(runs))
	parallel(len(runs), func(i int) {
		if runs[i].Inbox == 0 {
			published[i], usable[i] = rt.awaitingIn(runs[i])
		}
	})
	var out []PendingCall
	for i, run := range runs {
		if run.Status.Terminal() {
			continue
		}
		if usable[i] {
			out = append(out, filterKind(published[i], kind)...)
			continue
		}
		calls, err := rt.pendingInHistory(ctx, run.ID)
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

// awaitingRuns returns the runs that publish what they wait for, oldest
// first: from the store's index if it is a backend.AwaitingLister, else
// from every run's record.
func (rt *Runtime) awaitingRuns(ctx context.Context) ([]backend.RunInfo, error) {
	if l, ok := rt.store.(backend.AwaitingLister); ok {
		return l.ListAwaiting(ctx)
	}
	all, err := rt.client.ListRuns(ctx, backend.RunFilter{})
	if err != nil {
		return nil, err
	}
	runs := slices.DeleteFunc(all, func(r backend.RunInfo) bool { return len(r.Awaiting) == 0 })
	slices.Reverse(runs)
	return runs, nil
}

// parallel calls fn(i) for i from 0 to n-1, in as many goroutines as
// there are CPUs to run them, and returns when all have returned.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+255)/256) // small lists: one
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				fn(i)
			}
		})
	}
	wg.Wait()
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
// asked (see AskHumanTool), or that a tool asked while serving the call (an
// MCP server's elicitation), after checking it against the question (an
// error wrapping ErrInvalidAnswer: nothing is sent) and the Authorizer
// allowed it. Other errors are those of Decide.
func (rt *Runtime) Answer(ctx context.Context, runID string, a Answer) error {
	req, err := rt.find(ctx, runID, a.CallID, KindQuestion)
	if err != nil {
		return err
	}
	if err := checkAnswer(req, a); err != nil {
		return fmt.Errorf("answer call %s of run %s: %w: %v", a.CallID, runID, ErrInvalidAnswer, err)
	}
	if err := rt.auth.Authorize(ctx, req, a.By); err != nil {
		return fmt.Errorf("answer call %s of run %s: %w: %v", a.CallID, runID, ErrNotAuthorized, err)
	}
	msg := answerMsg{Turn: req.Turn, CallID: a.CallID, By: a.By, Text: a.Text, Action: a.Action}
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
