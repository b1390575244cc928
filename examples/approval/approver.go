package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
)

// The people of the example.
const (
	manager  = "alice@example.com" // may approve refunds
	customer = "bob@example.com"   // may not
)

// onlyManagers is the Authorizer of the example: refunds are decided by
// the managers listed, other requests by anyone who gives a name. It runs
// in the process that sends a decision, before the decision reaches the
// run; the run records who decided.
func onlyManagers(managers ...string) agent.Authorizer {
	return agent.AuthorizerFunc(func(ctx context.Context, req agent.PendingCall, by string) error {
		if req.Tool != "refund" {
			return agent.RequireName{}.Authorize(ctx, req, by)
		}
		if !slices.Contains(managers, by) {
			return fmt.Errorf("%q is not a manager", by)
		}
		return nil
	})
}

// nextApproval waits until the run waits for a decision on a call not in
// decided, and returns that call; ok is false if the run ended first.
//
// A run that waits holds no worker: it is only data in the store, and any
// process can list what waits (Runtime.Approvals) and decide it. A UI
// would list approvals when asked; here we look every 20 ms.
func nextApproval(ctx context.Context, approver *agent.Runtime, runID string, decided map[string]bool) (req agent.PendingCall, ok bool, err error) {
	for {
		info, err := approver.Run(runID).Describe(ctx)
		if err != nil {
			return agent.PendingCall{}, false, err
		}
		if info.Status.Terminal() {
			return agent.PendingCall{}, false, nil
		}
		if info.Status == backend.StatusAwaitingApproval {
			reqs, err := approver.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval}) // across all runs
			if err != nil {
				return agent.PendingCall{}, false, err
			}
			for _, r := range reqs {
				if r.RunID == runID && !decided[r.CallID] {
					return r, true, nil
				}
			}
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return agent.PendingCall{}, false, ctx.Err()
		}
	}
}

// showRequest prints a pending approval.
func showRequest(w io.Writer, req agent.PendingCall) {
	fmt.Fprintf(w, "\nPending approval\n  run:       %s (agent %s, turn %d)\n  call:      %s\n  tool:      %s\n  arguments: %s\n",
		req.RunID, req.Agent, req.Turn, req.CallID, req.Tool, req.Arguments)
}

// tryAs tries to approve req as someone the Authorizer refuses: Decide
// returns an error wrapping agent.ErrNotAuthorized, and nothing reaches
// the run.
func tryAs(ctx context.Context, w io.Writer, approver *agent.Runtime, req agent.PendingCall, by string) error {
	err := approver.Decide(ctx, req.RunID, agent.Decision{CallID: req.CallID, Approved: true, By: by, Reason: "please"})
	switch {
	case errors.Is(err, agent.ErrNotAuthorized):
		fmt.Fprintf(w, "%s tries to approve it: refused (%v)\n", by, err)
		return nil
	case err == nil:
		return fmt.Errorf("%s was allowed to approve a refund", by)
	}
	return err
}

// decideAs has the person by approve every request, with a reason, as the
// example's manager does without being asked.
func decideAs(by string) func(agent.PendingCall) (agent.Decision, error) {
	return func(req agent.PendingCall) (agent.Decision, error) {
		return agent.Decision{CallID: req.CallID, Approved: true, By: by, Reason: "late and cold: a full refund is fair"}, nil
	}
}

// ask has the person by decide req at a terminal: y or n, and a reason.
func ask(in io.Reader, w io.Writer, by string) func(agent.PendingCall) (agent.Decision, error) {
	lines := bufio.NewScanner(in)
	read := func(prompt string) (string, error) {
		fmt.Fprint(w, prompt)
		if !lines.Scan() {
			return "", cmp.Or(lines.Err(), io.ErrUnexpectedEOF)
		}
		return strings.TrimSpace(lines.Text()), nil
	}
	return func(req agent.PendingCall) (agent.Decision, error) {
		yes, err := read(fmt.Sprintf("Approve %s %s as %s? [y/N] ", req.Tool, req.Arguments, by))
		if err != nil {
			return agent.Decision{}, err
		}
		reason, err := read("Reason: ")
		if err != nil {
			return agent.Decision{}, err
		}
		approved := strings.EqualFold(yes, "y") || strings.EqualFold(yes, "yes")
		return agent.Decision{CallID: req.CallID, Approved: approved, By: by, Reason: reason}, nil
	}
}
