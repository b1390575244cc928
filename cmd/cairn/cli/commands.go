package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/aesgcm"
	"github.com/cairn-dev/cairn/durable/backend"
)

// statuses are the run statuses runs --status takes.
var statuses = []backend.Status{backend.StatusPending, backend.StatusRunning, backend.StatusWaiting,
	backend.StatusAwaitingApproval, backend.StatusCompleted, backend.StatusFailed, backend.StatusParked,
	backend.StatusCanceled}

func exactly(n int) func(int) bool { return func(got int) bool { return got == n } }

func (app App) commands() []*command {
	return []*command{
		{name: "runs", summary: "List runs, newest first.", store: true, nargs: exactly(0),
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.status, "status", "", "only runs with this status: "+joinStatuses())
				fs.StringVar(&o.workflow, "workflow", "", "only runs of this workflow or agent")
				fs.IntVar(&o.limit, "limit", 50, "at most this many runs (0: all)")
				fs.BoolVar(&o.json, "json", false, "print JSON, one record per line")
			}, run: cmdRuns},
		{name: "show", args: "RUN", summary: "Show a run: its record and its history as a timeline.", store: true,
			nargs: exactly(1), flags: jsonFlag, run: cmdShow},
		watchCommand(),
		transcriptCommand(),
		{name: "approvals", summary: "List the tool calls waiting for approval, across runs.", store: true,
			nargs: exactly(0), flags: jsonFlag, run: cmdApprovals},
		{name: "approve", args: "RUN CALL --by NAME [--reason TEXT]", summary: "Approve a tool call that waits for approval.",
			store: true, nargs: exactly(2), flags: decisionFlags, run: cmdDecide(true)},
		{name: "reject", args: "RUN CALL --by NAME --reason TEXT", summary: "Reject a tool call that waits for approval; the model is told why.",
			store: true, nargs: exactly(2), flags: decisionFlags, run: cmdDecide(false)},
		{name: "questions", summary: "List the questions agents asked a person (ask_human), across runs.", store: true,
			nargs: exactly(0), flags: jsonFlag, run: cmdQuestions},
		{name: "answer", args: "RUN CALL [ANSWER] --by NAME [--action accept|decline|cancel]",
			summary: "Answer an agent's question; the model reads the answer.\n" +
				"A tool's question (an MCP server's) with a schema takes a JSON object valid against it, or --action decline or cancel;\n" +
				"one that asks to visit a URL takes --action accept once it is done.",
			store: true, nargs: func(n int) bool { return n == 2 || n == 3 }, flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.by, "by", "", "who answers (required; checked by the authorizer and recorded)")
				fs.StringVar(&o.action, "action", "", "accept (a URL visited), decline or cancel a tool's question")
			}, run: cmdAnswer},
		{name: "signal", args: "RUN NAME [JSON]", summary: "Send a signal, with a JSON payload (default null), to a run.",
			store: true, nargs: func(n int) bool { return n == 2 || n == 3 }, flags: byFlag, run: cmdSignal},
		{name: "send", args: "RUN MESSAGE", summary: "Send a chat message to a conversation run.", store: true,
			nargs: exactly(2), run: cmdSend, flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.reply, "reply", false, "wait for the agent's reply and print it")
				fs.DurationVar(&o.timeout, "timeout", time.Minute, "how long --reply waits")
			}},
		{name: "cancel", args: "RUN", summary: "Ask a run to cancel.", store: true, nargs: exactly(1), flags: byFlag, run: cmdCancel},
		{name: "resume", args: "RUN", summary: "Try a parked run again, with the code its workers now run.\n" +
			"A run parked for a damaged history (corrupt_history) goes on once the history is repaired: show RUN says how.", store: true,
			nargs: exactly(1), flags: byFlag, run: cmdResume},
		{name: "history export", args: "RUN > FILE.json", summary: "Print a run's history as JSON: a file replay-check reads, a golden test's input.",
			store: true, nargs: exactly(1), run: cmdHistoryExport},
		app.replayCheckCommand(),
		app.evalCommand(),
		app.uiCommand(),
		app.mcpServeCommand(),
	}
}

func joinStatuses() string {
	names := make([]string, len(statuses))
	for i, s := range statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func jsonFlag(fs *flag.FlagSet, o *opts) {
	fs.BoolVar(&o.json, "json", false, "print JSON")
}

func byFlag(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.by, "by", "", "who sends it (recorded as the sender)")
}

func decisionFlags(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.by, "by", "", "who decides (required; checked by the authorizer and recorded)")
	fs.StringVar(&o.reason, "reason", "", "why (recorded; the model reads a rejection's reason)")
}

func cmdRuns(ctx context.Context, e *env, _ []string) error {
	filter := backend.RunFilter{Status: backend.Status(e.o.status), Workflow: e.o.workflow, Limit: max(e.o.limit, 0)}
	if filter.Status != "" && !slices.Contains(statuses, filter.Status) {
		return usageError("--status %q: not one of %s", e.o.status, joinStatuses())
	}
	runs, err := e.client.ListRuns(ctx, filter)
	if err != nil {
		return err
	}
	if e.o.json {
		return writeJSONLines(e.out, runs)
	}
	if len(runs) == 0 {
		fmt.Fprintln(e.out, "No runs.")
		return nil
	}
	t := newTable(e.out, "RUN", "WORKFLOW", "STATUS", "STEP", "CREATED", "UPDATED", "WAITING FOR")
	for _, r := range runs {
		t.row(r.ID, r.Workflow, string(r.Status), itoa(r.Step), formatTime(r.CreatedAt), formatTime(r.UpdatedAt),
			cut(cmp.Or(failureOf(r), r.Waiting), 50))
	}
	return t.flush()
}

// failureOf is the first line of a run's failure, if it has one.
func failureOf(r backend.RunInfo) string {
	if r.Failure == nil {
		return ""
	}
	first, _, _ := strings.Cut(r.Failure.Message, "\n")
	return first
}

func cmdShow(ctx context.Context, e *env, args []string) error {
	info, err := e.client.Describe(ctx, args[0])
	if err != nil {
		return err
	}
	// A damaged history is shown up to its first bad position, with
	// what to do about it.
	history, dmg, err := e.readHistory(ctx, info)
	if err != nil {
		return err
	}
	if e.o.json {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Run     backend.RunInfo `json:"run"`
			History []backend.Event `json:"history"`
			Damaged *damage         `json:"damaged,omitempty"`
		}{info, history, dmg})
	}
	writeSummary(e, info)
	if !info.Status.Dormant() {
		// What an agent run waits for from people.
		reqs, err := e.view.Pending(ctx, agent.PendingFilter{RunID: info.ID})
		if err != nil {
			return err
		}
		for _, r := range reqs {
			what := fmt.Sprintf("%s %s: %s %s", r.Kind, r.CallID, r.Tool, cut(r.Arguments, 60))
			if r.Kind == agent.KindQuestion {
				what = fmt.Sprintf("%s %s: %q", r.Kind, r.CallID, cut(r.Question, 60))
			}
			fmt.Fprintf(e.out, "%-10s %s (since %s)\n", "Pending", what, formatTime(r.RequestedAt))
		}
	}
	fmt.Fprintln(e.out)
	fmt.Fprintln(e.out, "History")
	if err := durable.WriteTimeline(e.out, history); err != nil {
		return err
	}
	if n := countEncrypted(history); n > 0 {
		fmt.Fprintf(e.out, "\n%d payloads are encrypted with keys this tool was not given: set %s to read them.\n", n, aesgcm.EnvKeys)
	}
	if dmg != nil {
		writeDamage(e, info, dmg)
	}
	return nil
}

// writeSummary prints a run's record, one field a line.
func writeSummary(e *env, info backend.RunInfo) {
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(e.out, "%-10s %s\n", name, value)
		}
	}
	field("Run", info.ID)
	field("Workflow", info.Workflow)
	field("Status", string(info.Status))
	if info.Waiting != "" && !info.Status.Dormant() {
		field("Waiting", info.Waiting)
	}
	if !info.WakeAt.IsZero() {
		field("Wakes", formatTime(info.WakeAt))
	}
	if info.Failure != nil {
		field("Failure", info.Failure.Message)
		if info.Failure.Details != "" {
			fmt.Fprintln(e.out, indent(info.Failure.Details, "           "))
		}
	}
	field("Step", itoa(info.Step))
	if info.Generation > 0 {
		field("History", fmt.Sprintf("%d (continued as new %d times)", info.Generation, info.Generation))
	}
	field("Events", fmt.Sprint(info.HistoryLen))
	if info.ParentID != "" {
		field("Parent", fmt.Sprintf("%s (step %d)", info.ParentID, info.ParentStep))
	}
	field("Created", formatTime(info.CreatedAt))
	field("Updated", formatTime(info.UpdatedAt))
	if !info.Trace.IsZero() {
		field("Trace", info.Trace.TraceID.String())
	}
}

func cmdApprovals(ctx context.Context, e *env, _ []string) error {
	reqs, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindApproval})
	if err != nil {
		return err
	}
	if e.o.json {
		return writeJSONLines(e.out, reqs)
	}
	if len(reqs) == 0 {
		fmt.Fprintln(e.out, "No approvals pending.")
		return nil
	}
	t := newTable(e.out, "RUN", "CALL", "AGENT", "TOOL", "REQUESTED", "DEADLINE", "ARGUMENTS")
	for _, r := range reqs {
		deadline := ""
		if !r.Deadline.IsZero() {
			deadline = formatTime(r.Deadline)
		}
		t.row(r.RunID, r.CallID, r.Agent, r.Tool, formatTime(r.RequestedAt), deadline, cut(r.Arguments, 60))
	}
	return t.flush()
}

func cmdQuestions(ctx context.Context, e *env, _ []string) error {
	reqs, err := e.rt.Pending(ctx, agent.PendingFilter{Kind: agent.KindQuestion})
	if err != nil {
		return err
	}
	if e.o.json {
		return writeJSONLines(e.out, reqs)
	}
	if len(reqs) == 0 {
		fmt.Fprintln(e.out, "No questions pending.")
		return nil
	}
	t := newTable(e.out, "RUN", "CALL", "AGENT", "ASKED", "QUESTION")
	for _, r := range reqs {
		q := r.Question
		switch {
		case len(r.Schema) > 0:
			q = fmt.Sprintf("%s (tool %s; answer with JSON: %s)", q, r.Tool, r.Schema)
		case r.URL != "":
			q = fmt.Sprintf("%s (tool %s; visit %s)", q, r.Tool, r.URL)
		}
		t.row(r.RunID, r.CallID, r.Agent, formatTime(r.RequestedAt), cut(q, 160))
	}
	return t.flush()
}

func cmdAnswer(ctx context.Context, e *env, args []string) error {
	if e.o.by == "" {
		return usageError("--by is required: who answers is checked and recorded")
	}
	a := agent.Answer{CallID: args[1], By: e.o.by, Action: e.o.action}
	switch {
	case len(args) == 3 && a.Action != "" && a.Action != "accept":
		return usageError("--action %s takes no ANSWER", a.Action)
	case len(args) == 3:
		a.Text = args[2]
	case a.Action == "":
		return usageError("ANSWER is required, unless --action accepts (a URL visited), declines or cancels")
	}
	if err := e.rt.Answer(ctx, args[0], a); err != nil {
		return err
	}
	verb := map[string]string{"decline": "Declined", "cancel": "Canceled"}[a.Action]
	fmt.Fprintf(e.out, "%s call %s of run %s, as %s.\n", cmp.Or(verb, "Answered"), args[1], args[0], e.o.by)
	return nil
}

func cmdDecide(approve bool) func(ctx context.Context, e *env, args []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if e.o.by == "" {
			return usageError("--by is required: who decides is checked and recorded")
		}
		if !approve && e.o.reason == "" {
			return usageError("--reason is required: the model is told why its call was rejected")
		}
		runID, callID := args[0], args[1]
		err := e.rt.Decide(ctx, runID, agent.Decision{CallID: callID, Approved: approve, By: e.o.by, Reason: e.o.reason})
		if err != nil {
			return err
		}
		verb := map[bool]string{true: "Approved", false: "Rejected"}[approve]
		fmt.Fprintf(e.out, "%s call %s of run %s, as %s.\n", verb, callID, runID, e.o.by)
		return nil
	}
}

func cmdSignal(ctx context.Context, e *env, args []string) error {
	payload := json.RawMessage("null")
	if len(args) == 3 {
		if !json.Valid([]byte(args[2])) {
			return usageError("the payload %q is not JSON (quote a string: '\"text\"')", args[2])
		}
		payload = json.RawMessage(args[2])
	}
	if err := e.client.Signal(e.sender(ctx), args[0], args[1], payload); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "Sent signal %s to run %s.\n", args[1], args[0])
	return nil
}

func cmdSend(ctx context.Context, e *env, args []string) error {
	id, err := e.rt.Send(ctx, args[0], args[1])
	if err != nil {
		return err
	}
	if !e.o.reply {
		fmt.Fprintf(e.out, "Sent message %s to run %s.\n", id, args[0])
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.o.timeout)
	defer cancel()
	r, err := e.rt.Reply(ctx, args[0], id)
	if err != nil {
		return fmt.Errorf("waiting for the reply to %s: %w", id, err)
	}
	if r.Error != "" {
		return fmt.Errorf("the run failed to reply: %s", r.Error)
	}
	fmt.Fprintln(e.out, r.Text)
	return nil
}

func cmdCancel(ctx context.Context, e *env, args []string) error {
	if err := e.client.Cancel(e.sender(ctx), args[0]); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "Asked run %s to cancel.\n", args[0])
	return nil
}

func cmdResume(ctx context.Context, e *env, args []string) error {
	if err := e.client.Resume(e.sender(ctx), args[0]); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "Asked for run %s to be tried again; see it with: show %s\n", args[0], args[0])
	return nil
}

func cmdHistoryExport(ctx context.Context, e *env, args []string) error {
	history, err := e.client.History(ctx, args[0])
	if err != nil {
		return err
	}
	data, err := backend.MarshalHistory(history)
	if err != nil {
		return err
	}
	_, err = e.out.Write(data)
	return err
}

// sender names --by as the sender of what ctx sends.
func (e *env) sender(ctx context.Context) context.Context {
	if e.o.by == "" {
		return ctx
	}
	return durable.WithSender(ctx, e.o.by)
}
