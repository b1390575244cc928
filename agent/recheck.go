package agent

import (
	"cmp"
	"context"
	"time"

	"github.com/cairn-dev/cairn/durable"
)

// The worker checks decisions and answers again.
//
// Runtime.Decide and Runtime.Answer run the Authorizer in the process that
// sends a decision; but whoever can write to the store, or runs a client
// that skips the check, can put a decision in a run's inbox. So the loop,
// where it takes a decision or an answer out of the inbox and into its
// history, runs its own Runtime's Authorizer on it again: one it refuses
// is recorded as refused (decision_refused: who, and the Authorizer's
// reason), is not told to the model, and the call keeps waiting. The
// verdict is journaled (a side effect), so replay does not ask the
// Authorizer again and takes the same branch.

// recheckChange guards the check for runs whose histories were written
// before it (durable.Version): they replay without it.
const recheckChange = "cairn.recheck-decisions"

// authorizeTimeout bounds the worker's call to the Authorizer.
const authorizeTimeout = 10 * time.Second

// refusal is the journaled verdict of the worker's check.
type refusal struct {
	Refused bool   `json:"refused,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// refuse checks the decision (or answer) by by on call i with the
// runtime's Authorizer, and records a refusal. It reports whether the
// decision was refused.
func (tt *turnTools) refuse(ctx durable.Context, i int, by string) (bool, error) {
	if durable.Version(ctx, recheckChange, durable.DefaultVersion, 1) == durable.DefaultVersion {
		return false, nil
	}
	c := tt.calls[i]
	a := tt.st.reg.agent
	req, _ := tt.request(i) // i waits: the caller found it among those that do
	req.RunID = ctx.RunID()
	v, err := durable.SideEffect(ctx, func() refusal {
		actx, cancel := context.WithTimeout(context.Background(), authorizeTimeout)
		defer cancel()
		if err := tt.rt.auth.Authorize(actx, req, by); err != nil {
			return refusal{Refused: true, Reason: cmp.Or(err.Error(), ErrNotAuthorized.Error())}
		}
		return refusal{}
	})
	if err != nil || !v.Refused {
		return false, err
	}
	return true, durable.Record(ctx, recDecisionRefused, record{Agent: a.Name, Turn: tt.st.turns, CallID: c.ID,
		Tool: c.Name, By: by, Reason: v.Reason, Since: req.RequestedAt})
}
