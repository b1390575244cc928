package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// replayFlags are replay-check's flags that opts has no field for. Each
// Run builds its commands afresh, so they belong to one command line.
type replayFlags struct {
	all         bool
	skipUnknown bool
}

// replayCheckCommand is replay-check: it replays recorded histories
// against the workflows and agents of app, and prints for each one OK or
// the first divergence as an expected-versus-actual diff.
//
// The histories are, in this order: the FILE arguments (exported by
// history export, in the backend.MarshalHistory format), the runs named
// by --run, and the runs of --workflow; with none of these, every run in
// flight in Redis. Runs in flight are those not ended (parked runs
// included: resuming them runs the new code); --all takes ended runs
// too, --status only runs with that status. Redis is opened only when a
// history comes from it.
//
// A history whose workflow the program does not register is UNKNOWN, a
// failure, unless --skip-unknown; when checking every run in flight such
// runs are SKIPPED, not failures, since one Redis may serve several
// programs. A history that cannot be read is an ERROR, a failure. The
// command ends with a summary line. It returns nil (ExitOK) only if
// every history it checked replays; errDiverged (ExitDiverged, silently:
// the report says it) if one diverges; another error (ExitFailure) if
// none diverges but one could not be checked.
func (app App) replayCheckCommand() *command {
	var rf replayFlags
	return &command{
		name:    "replay-check",
		args:    "[FILE.json ...] [--run ID ...] [--workflow NAME] [--status S]",
		summary: "Replay recorded histories against this program's code.",
		flags: func(fs *flag.FlagSet, o *opts) {
			storeFlags(fs, &o.conn, "the Redis `URL` (as for the other commands), for --run, --workflow, or no FILE; default $"+EnvRedisURL)
			fs.Var(&o.runs, "run", "check the history of the run `ID` in Redis (repeatable)")
			fs.StringVar(&o.workflow, "workflow", "", "check the runs in flight of the workflow or agent `NAME` in Redis")
			fs.StringVar(&o.status, "status", "", "check only the runs with the status `S`, of --workflow or, with no FILE or --run, of all: "+joinStatuses())
			fs.BoolVar(&rf.all, "all", false, "check ended runs too, not only the runs in flight")
			fs.BoolVar(&rf.skipUnknown, "skip-unknown", false, "do not fail on a FILE or --run of a workflow this program does not register\n(checking all runs in flight, such runs are always skipped: one Redis may serve several programs)")
		},
		run: func(ctx context.Context, e *env, files []string) error {
			return replayCheck(ctx, e, files, rf)
		},
	}
}

// Outcomes of checking one history: the first word of its line.
const (
	replayOK       = "OK"
	replayDiverged = "DIVERGED"
	replayUnknown  = "UNKNOWN" // workflow not registered: a failure
	replaySkipped  = "SKIPPED" // not checked, not a failure
	replayError    = "ERROR"   // history unreadable: a failure
)

// replaySource is one history to check: a file, or a run in Redis.
type replaySource struct {
	label    string // the file name or the run id
	file     bool
	workflow string // when known before reading: a listed run's workflow
	scanned  bool   // found by listing every run in flight
}

// replayCheck is replay-check's work.
func replayCheck(ctx context.Context, e *env, files []string, rf replayFlags) error {
	o := e.o
	if o.status != "" && !slices.Contains(statuses, backend.Status(o.status)) {
		return usageError("--status %q: not one of %s", o.status, joinStatuses())
	}
	if o.status != "" && rf.all {
		return usageError("--status and --all exclude each other: --status picks the runs of one status, --all those of every status")
	}
	scan := len(files) == 0 && len(o.runs) == 0 && o.workflow == ""
	if !scan && o.workflow == "" && (o.status != "" || rf.all) {
		return usageError("--status and --all select among runs of --workflow, or of all runs when no FILE or --run is given")
	}
	defs, err := e.app.definitions()
	if err != nil {
		return err
	}
	if o.workflow != "" && defs[o.workflow] == nil {
		has := "it has: " + strings.Join(sortedKeys(defs), ", ")
		if len(defs) == 0 {
			has = "it has none; mount this tool in your program, with its agents and workflows, to check their runs"
		}
		return usageError("--workflow %s: this program registers no workflow or agent of that name (%s)", o.workflow, has)
	}
	if scan && e.app.redisURL(o.conn) == "" {
		return usageError("nothing to check: give history files (from history export), or Redis (--redis URL or $%s) to check the runs in flight",
			EnvRedisURL)
	}

	sources := make([]replaySource, 0, len(files)+len(o.runs))
	for _, f := range files {
		sources = append(sources, replaySource{label: f, file: true})
	}
	seen := map[string]bool{}
	for _, id := range o.runs {
		if !seen[id] {
			seen[id] = true
			sources = append(sources, replaySource{label: id})
		}
	}
	if len(o.runs) > 0 || o.workflow != "" || scan {
		if err := e.open(ctx); err != nil {
			return err
		}
		defer e.close()
	}
	if o.workflow != "" || scan {
		runs, err := e.client.ListRuns(ctx, backend.RunFilter{Workflow: o.workflow, Status: backend.Status(o.status)})
		if err != nil {
			return err
		}
		// By id, so that CI logs compare from one check to the next.
		slices.SortFunc(runs, func(a, b backend.RunInfo) int { return strings.Compare(a.ID, b.ID) })
		for _, r := range runs {
			if seen[r.ID] || (o.status == "" && !rf.all && r.Status.Terminal()) {
				continue
			}
			seen[r.ID] = true
			sources = append(sources, replaySource{label: r.ID, workflow: r.Workflow, scanned: scan})
		}
	}
	if len(sources) == 0 {
		fmt.Fprintln(e.out, "No histories to check.")
		return nil
	}

	width := 0
	for _, s := range sources {
		width = max(width, len(s.label))
	}
	var ok, diverged, failed, skipped int
	for _, s := range sources {
		if err := ctx.Err(); err != nil {
			return err // interrupted
		}
		outcome, workflow, detail := e.checkOne(ctx, s, defs)
		if outcome == replayUnknown && (rf.skipUnknown || s.scanned) {
			outcome = replaySkipped
		}
		switch outcome {
		case replayOK:
			ok++
		case replayDiverged:
			diverged++
		case replaySkipped:
			skipped++
		default:
			failed++
		}
		line := fmt.Sprintf("%-10s%-*s", outcome, width, s.label)
		if workflow != "" {
			line += "  " + workflow
		}
		first, rest, multi := strings.Cut(detail, "\n")
		if first != "" {
			line += "  " + first
		}
		fmt.Fprintln(e.out, strings.TrimRight(line, " "))
		if multi {
			fmt.Fprintln(e.out, indent(rest, strings.Repeat(" ", 10)))
		}
	}
	fmt.Fprintf(e.out, "%d %s: %d OK, %d diverged, %d not checked\n",
		len(sources), plural(len(sources), "history", "histories"), ok, diverged, failed+skipped)
	switch {
	case diverged > 0:
		return errDiverged
	case failed > 0:
		return fmt.Errorf("%d of %d %s could not be checked", failed, len(sources), plural(len(sources), "history", "histories"))
	}
	return nil
}

// checkOne reads and replays one history. It returns the outcome, the
// history's workflow if known, and what to print after it: the event
// count, the diff (its lines after the first are printed indented), or
// why the history was not checked.
func (e *env) checkOne(ctx context.Context, s replaySource, defs map[string]durable.WorkflowDefinition) (outcome, workflow, detail string) {
	notRegistered := func(name string) string {
		return fmt.Sprintf("workflow %s is not registered in this program", name)
	}
	if s.workflow != "" && defs[s.workflow] == nil {
		// Known from the run's record: no need to read its history.
		return replayUnknown, s.workflow, notRegistered(s.workflow)
	}
	var history []backend.Event
	if s.file {
		f, err := os.Open(s.label)
		if err != nil {
			return replayError, "", err.Error()
		}
		history, err = backend.UnmarshalHistory(f)
		f.Close()
		if err != nil {
			return replayError, "", fmt.Sprintf("not a history exported by history export: %v", err)
		}
	} else {
		var err error
		if history, err = e.client.History(ctx, s.label); err != nil {
			return replayError, "", explain(err)
		}
	}
	if len(history) == 0 || history[0].Type != backend.EventRunStarted {
		return replayError, "", fmt.Sprintf("the history does not begin with %s", backend.EventRunStarted)
	}
	workflow = history[0].Name
	def := defs[workflow]
	if def == nil {
		if workflow == "" {
			return replayUnknown, "", "the history does not name its workflow"
		}
		return replayUnknown, workflow, notRegistered(workflow)
	}
	err := durable.ReplayHistory(def, history)
	var nd *durable.NondeterminismError
	switch {
	case err == nil:
		return replayOK, workflow, fmt.Sprintf("%d %s", len(history), plural(len(history), "event", "events"))
	case errors.As(err, &nd):
		named := *nd
		named.RunID = s.label
		return replayDiverged, workflow, "\n" + named.Diff()
	case errors.Is(err, backend.ErrCorruptHistory):
		return replayError, workflow, err.Error()
	}
	// The code cannot replay the history for another reason.
	return replayDiverged, workflow, "\n" + err.Error()
}

// definitions returns the app's workflows by name: its Workflows, and the
// workflows of its Agents and of the agents they hand off to or use as
// helpers. The agents' workflows are those of a Runtime on an in-memory store:
// replay needs only their code, no store.
func (app App) definitions() (map[string]durable.WorkflowDefinition, error) {
	defs := map[string]durable.WorkflowDefinition{}
	add := func(def durable.WorkflowDefinition) error {
		if old, dup := defs[def.Name()]; dup && old != def {
			return fmt.Errorf("this program gives two workflows named %s", def.Name())
		}
		defs[def.Name()] = def
		return nil
	}
	for _, wf := range app.Workflows {
		if wf == nil {
			continue
		}
		if err := add(wf); err != nil {
			return nil, err
		}
	}
	if len(app.Agents) == 0 {
		return defs, nil
	}
	rt := agent.NewRuntime(inmem.New(), agent.Options{Codec: app.Codec, Authorizer: app.Authorizer,
		Logger: slog.New(slog.DiscardHandler)})
	if err := rt.Register(app.Agents...); err != nil {
		return nil, err
	}
	done := map[*agent.Agent]bool{}
	var walk func(a *agent.Agent) error
	walk = func(a *agent.Agent) error {
		if a == nil || done[a] {
			return nil
		}
		done[a] = true
		if _, dup := defs[a.Name]; dup {
			return fmt.Errorf("this program gives two workflows named %s (an agent and a workflow)", a.Name)
		}
		for _, b := range slices.Concat(a.Handoffs, a.Helpers) {
			if err := walk(b); err != nil {
				return err
			}
		}
		defs[a.Name] = rt.Workflow(a)
		return nil
	}
	for _, a := range app.Agents {
		if err := walk(a); err != nil {
			return nil, err
		}
	}
	return defs, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
