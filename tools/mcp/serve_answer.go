package mcp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
)

// await waits up to wait for the answer of run id, of agent agentName,
// sending its progress if the request asked for it, and returns the answer,
// the run's error, or, if the wait ran out first, its status. It returns an
// error only when ctx is done: the request was canceled, and the run goes
// on.
func (s *AgentServer) await(ctx context.Context, req *sdk.CallToolRequest, id, agentName string, wait time.Duration) (*sdk.CallToolResult, error) {
	progressDone := func() {}
	stopProgress := func() {}
	if token := req.Params.GetProgressToken(); token != nil && req.Session != nil {
		pctx, cancel := context.WithCancel(ctx)
		done := s.progress(pctx, req.Session, token, id)
		// Once the run has ended, its last events (run_finished among
		// them) are sent before the answer: Follow returns after them,
		// or, if the feed lost them (a worker died between its commit
		// and their write), once it sees the run has ended, within about
		// two seconds.
		progressDone = func() { <-done; cancel() }
		stopProgress = func() { cancel(); <-done }
	}
	defer stopProgress()

	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	res, err := s.rt.Run(id).Result(waitCtx)
	if err != nil && waitCtx.Err() != nil && ctx.Err() == nil {
		// The wait is over: answer with where the run is, or with its
		// result if it has just ended.
		info, derr := s.rt.Client().Describe(ctx, id)
		switch {
		case derr != nil && ctx.Err() == nil:
			return serveError(&ServedRun{RunID: id, Agent: agentName}, fmt.Sprintf("read run %s: %v", id, derr)), nil
		case derr == nil && !info.Status.Terminal():
			stopProgress()
			return s.statusResult(ctx, agentName, info), nil
		case derr == nil:
			res, err = s.rt.Run(id).Result(ctx)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	run := &ServedRun{RunID: id, Agent: agentName}
	var runErr *durable.RunError
	switch {
	case errors.As(err, &runErr):
		progressDone()
		run.Status = string(runErr.Status)
		if runErr.Failure != nil {
			run.Error = runErr.Failure.Message
		}
		verb := "failed"
		if runErr.Status == backend.StatusCanceled {
			verb = "was canceled"
		}
		return serveError(run, fmt.Sprintf("Run %s (agent %s) %s: %s", id, agentName, verb, cmp.Or(run.Error, run.Status))), nil
	case err != nil:
		return serveError(run, fmt.Sprintf("read the result of run %s: %v", id, err)), nil
	}
	progressDone()
	run.Status = string(backend.StatusCompleted)
	out := &sdk.CallToolResult{Meta: sdk.Meta{MetaServedRun: run}, Content: []sdk.Content{&sdk.TextContent{Text: res.Text}}}
	if len(res.Output) > 0 {
		// The agent's Output type: a JSON object.
		out.StructuredContent = json.RawMessage(res.Output)
	}
	return out, nil
}

// statusResult is the answer of a call whose wait ran out before its run
// ended: the run's id, status, and what it waits for. It is not an error.
func (s *AgentServer) statusResult(ctx context.Context, agentName string, info backend.RunInfo) *sdk.CallToolResult {
	run := &ServedRun{RunID: info.ID, Agent: agentName, Status: string(info.Status), Waiting: info.Waiting}
	if info.Failure != nil {
		run.Error = info.Failure.Message
	}
	pending, err := s.rt.Pending(ctx, agent.PendingFilter{RunID: info.ID})
	if err != nil {
		s.log.Warn("mcp: read pending calls", "run", info.ID, "err", err)
	}
	run.Pending = pending

	var b strings.Builder
	fmt.Fprintf(&b, "Run %s (agent %s) has not answered yet: it is %s.", info.ID, agentName, info.Status)
	if info.Status == backend.StatusParked {
		fmt.Fprintf(&b, " It is parked (%s) and goes on once code that can run it is deployed.", cmp.Or(run.Error, "no reason given"))
	}
	for _, p := range pending {
		switch p.Kind {
		case agent.KindApproval:
			fmt.Fprintf(&b, "\nIt waits for a person to approve or reject call %s: %s %s.", p.CallID, p.Tool, p.Arguments)
		case agent.KindQuestion:
			fmt.Fprintf(&b, "\nIt waits for a person to answer call %s: %q.", p.CallID, p.Question)
		}
	}
	fmt.Fprintf(&b, "\nCall %s with {\"run_id\":%q} to wait for its answer.", RunResultTool, info.ID)
	return serveText(run, b.String())
}

// progress sends the live events of run id to the client, as progress
// notifications with token, until the run finishes or ctx is done; the
// channel it returns is closed then.
func (s *AgentServer) progress(ctx context.Context, session *sdk.ServerSession, token any, id string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		err := s.rt.Follow(ctx, id, "", func(e agent.LiveEvent) error {
			msg := serveProgressMessage(e)
			if msg == "" {
				return nil
			}
			n++
			return session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: token, Progress: float64(n), Message: msg})
		})
		if err != nil && ctx.Err() == nil {
			// Progress is a view: the answer does not depend on it.
			s.log.Debug("mcp: progress of a run", "run", id, "err", err)
		}
	}()
	return done
}

// serveProgressMessage says what a live event means, for a person watching the
// run; "" for events not worth a notification.
func serveProgressMessage(e agent.LiveEvent) string {
	switch e.Type {
	case agent.LiveTextDelta:
		return e.Text
	case agent.LiveAttemptAbandoned:
		return "(the model call is retried; drop its text so far)"
	case agent.LiveToolStarted:
		return fmt.Sprintf("calling %s %s", e.Tool, e.Arguments)
	case agent.LiveToolFinished:
		if e.Error != "" {
			return fmt.Sprintf("%s failed: %s", e.Tool, e.Error)
		}
		return fmt.Sprintf("%s finished", e.Tool)
	case agent.LiveToolFailed:
		return fmt.Sprintf("%s failed, to be retried: %s", e.Tool, e.Error)
	case agent.LiveApprovalRequested:
		return fmt.Sprintf("waiting for a person to approve %s %s (call %s)", e.Tool, e.Arguments, e.CallID)
	case agent.LiveApprovalDecided:
		verdict := "rejected"
		if e.Approved {
			verdict = "approved"
		}
		return fmt.Sprintf("%s %s by %s", e.Tool, verdict, e.By)
	case agent.LiveQuestionAsked:
		return fmt.Sprintf("waiting for a person to answer: %s (call %s)", e.Text, e.CallID)
	case agent.LiveQuestionAnswered:
		return fmt.Sprintf("answered by %s", e.By)
	case agent.LiveHandoff:
		return "handed off to " + e.Agent
	case agent.LiveRunFinished:
		if e.Error != "" {
			return fmt.Sprintf("run %s: %s", e.Status, e.Error)
		}
		return fmt.Sprintf("run %s", e.Status)
	}
	return ""
}

// serveText is a result that is not an error, about run.
func serveText(run *ServedRun, text string) *sdk.CallToolResult {
	return &sdk.CallToolResult{Meta: sdk.Meta{MetaServedRun: run}, Content: []sdk.Content{&sdk.TextContent{Text: text}}}
}

// serveError is an error result saying msg, about run if it is not nil.
func serveError(run *ServedRun, msg string) *sdk.CallToolResult {
	r := &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: msg}}}
	if run != nil {
		r.Meta = sdk.Meta{MetaServedRun: run}
	}
	return r
}
