package agent

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/tools"
)

// The waits of a turn for people: approvals to decide, and questions to
// answer (the model's, with ask_human, and its tools', see toolinput.go),
// each on its own, published for Runtime.Pending while they wait.

// waiting is the number of the turn's calls that wait for a person.
func (tt *turnTools) waiting() int {
	return len(tt.approvals) + len(tt.questions) + len(tt.elicits)
}

// awaitPeople waits for the decisions and answers the turn needs. Each
// call is decided on its own; an approved call starts at once, while the
// others still wait.
func (tt *turnTools) awaitPeople(ctx durable.Context) error {
	if tt.waiting() == 0 {
		return nil
	}
	defer durable.SetWaitingStatus(ctx, "")
	defer durable.SetAwaiting(ctx, nil)
	policy := tt.st.reg.agent.Approval
	var deadline durable.Future[struct{}]
	if len(tt.approvals) > 0 && policy.Timeout > 0 {
		deadline = durable.NewTimer(ctx, policy.Timeout)
	}
	for tt.waiting() > 0 {
		if err := durable.SetAwaiting(ctx, tt.open()); err != nil {
			return err
		}
		ws := []durable.Waitable{decisionSignal.Ready(ctx), answerSignal.Ready(ctx)}
		if len(tt.approvals) > 0 {
			durable.SetWaitingStatus(ctx, backend.StatusAwaitingApproval)
			if deadline != nil {
				ws = append(ws, deadline)
			}
		} else {
			durable.SetWaitingStatus(ctx, "")
		}
		which, err := durable.Select(ctx, ws...)
		if err != nil {
			return err
		}
		switch which {
		case 0:
			d, _, err := decisionSignal.TryReceive(ctx)
			if err != nil {
				// A message that does not decode is dropped, not
				// allowed to fail the run.
				durable.Logger(ctx).Warn("undecodable decision ignored", "err", err)
				continue
			}
			if i, ok := tt.pending(tt.approvals, d.Turn, d.CallID); ok {
				if refused, err := tt.refuse(ctx, i, d.By); refused || err != nil {
					if err != nil {
						return err
					}
					continue
				}
				if err := tt.decide(ctx, i, d); err != nil {
					return err
				}
			}
		case 1:
			if err := tt.takeAnswer(ctx); err != nil {
				return err
			}
		case 2:
			for _, i := range slices.Sorted(maps.Keys(tt.approvals)) {
				d := decisionMsg{Turn: tt.st.turns, CallID: tt.calls[i].ID, Approved: policy.OnTimeout, By: "timeout",
					Reason: fmt.Sprintf("no decision within %v", policy.Timeout)}
				if err := tt.decide(ctx, i, d); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// takeAnswer takes an answer out of the run's inbox, to a question of the
// model's or of a tool's, if it answers one that waits and is allowed.
func (tt *turnTools) takeAnswer(ctx durable.Context) error {
	ans, _, err := answerSignal.TryReceive(ctx)
	if err != nil {
		// A message that does not decode is dropped, not allowed to
		// fail the run.
		durable.Logger(ctx).Warn("undecodable answer ignored", "err", err)
		return nil
	}
	i, ok := tt.pending(tt.questions, ans.Turn, ans.CallID)
	elicit := false
	if !ok {
		i, ok = tt.pending(tt.elicits, ans.Turn, ans.CallID)
		elicit = ok
	}
	if !ok {
		return nil
	}
	if refused, err := tt.refuse(ctx, i, ans.By); refused || err != nil {
		return err
	}
	if elicit {
		return tt.answerInput(ctx, i, ans)
	}
	return tt.answer(ctx, i, ans)
}

// open returns the calls of the turn that wait for a person, in the
// model's order, as Runtime.Pending lists them (but for RunID, which the
// reader knows): what the run publishes with durable.SetAwaiting. Arguments past maxAwaitingArgs are left out
// (and the call marked cut): a reader then reads them from the history.
func (tt *turnTools) open() []awaitingCall {
	var out []awaitingCall
	for i := range tt.calls {
		req, ok := tt.request(i)
		if !ok {
			continue
		}
		call := awaitingCall{PendingCall: req}
		if len(req.Arguments)+len(req.Question)+len(req.Schema)+len(req.URL) > maxAwaitingArgs {
			call.Arguments, call.Question, call.Schema, call.URL, call.Cut = "", "", nil, "", true
		}
		out = append(out, call)
	}
	return out
}

// request returns call i as a request to a person, as Runtime.Pending
// lists it but for RunID, with ok false if it waits for no one.
func (tt *turnTools) request(i int) (req PendingCall, ok bool) {
	a, c := tt.st.reg.agent, tt.calls[i]
	req = PendingCall{Agent: a.Name, Turn: tt.st.turns, CallID: c.ID, Tool: c.Name}
	if asked, ok := tt.approvals[i]; ok {
		req.Kind, req.Arguments, req.RequestedAt = KindApproval, c.Arguments, asked
		if d := a.Approval.Timeout; d > 0 {
			req.Deadline = asked.Add(d)
		}
		return req, true
	}
	if asked, ok := tt.questions[i]; ok {
		var q struct{ Question string }
		_ = json.Unmarshal([]byte(c.Arguments), &q) // begin checked it
		req.Kind, req.Question, req.RequestedAt = KindQuestion, q.Question, asked
		return req, true
	}
	if asked, ok := tt.elicits[i]; ok {
		r := tt.asking[i]
		req.Kind, req.Arguments, req.Question, req.Schema, req.URL = KindQuestion, c.Arguments, r.Message, r.Schema, r.URL
		req.RequestedAt = asked
		return req, true
	}
	return PendingCall{}, false
}

// pending finds the waiting call that a message is meant for. Messages
// for calls of other turns, or already settled, are dropped.
func (tt *turnTools) pending(waiting map[int]time.Time, turn int, callID string) (int, bool) {
	if turn != tt.st.turns {
		return 0, false
	}
	for _, i := range slices.Sorted(maps.Keys(waiting)) { // in order: a model may repeat an id
		if tt.calls[i].ID == callID {
			return i, true
		}
	}
	return 0, false
}

func (tt *turnTools) decide(ctx durable.Context, i int, d decisionMsg) error {
	asked := tt.approvals[i]
	delete(tt.approvals, i)
	c := tt.calls[i]
	err := durable.Record(ctx, recApprovalDecided, record{Agent: tt.st.reg.agent.Name, Turn: d.Turn, CallID: c.ID,
		Tool: c.Name, Approved: d.Approved, By: d.By, Reason: d.Reason, Since: asked})
	if d.Approved {
		tt.start(ctx, i)
		return err
	}
	msg := "The call was rejected by " + cmp.Or(d.By, "an approver")
	if d.Reason != "" {
		msg += ": " + d.Reason
	}
	tt.results[i] = errorResult(msg + ". It was not run.")
	return err
}

func (tt *turnTools) answer(ctx durable.Context, i int, a answerMsg) error {
	asked := tt.questions[i]
	delete(tt.questions, i)
	text, _ := json.Marshal(map[string]string{"answer": a.Text, "answered_by": a.By})
	tt.results[i] = tools.Result{Content: string(text)}
	return durable.Record(ctx, recQuestionAnswered, record{Agent: tt.st.reg.agent.Name, Turn: a.Turn,
		CallID: tt.calls[i].ID, By: a.By, Text: a.Text, Since: asked})
}
