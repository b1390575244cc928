package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
)

// watchFlags are watch's flags that opts has no field for. Each Run
// builds its commands afresh, so they belong to one command line.
type watchFlags struct {
	follow bool
}

// watchCommand is watch RUN: it follows a run as it goes, printing the
// history events it commits, one line each, as they are committed.
//
// It prints a summary line of the run, then the run's history so far as
// timeline rows (the columns of show's history: SEQ, TIME, STEP, EVENT,
// NAME, ATTEMPT, DETAIL), then waits for the run's next commit
// (durable.Client.WaitCommit) and prints the events committed since,
// each exactly once and in order. After each change that shows, it
// prints a progress line:
//
//	status running · step 5 · 12 events · waiting for: signal approve
//
// The rows and the progress line after them describe the same state of
// the run: the events printed are all its history holds at that record.
// A run that continues as new starts a history again at 1; watch says so
// in a line and goes on with the new history.
//
// watch stops, with exit status 0:
//   - when the run ends (completed, failed or canceled): it prints the
//     outcome, the answer's text for an agent run, the result as JSON for
//     another workflow, or the failure;
//   - when the run waits (waiting, awaiting_approval, parked), unless
//     --follow is given: it prints what the run waits for, with the
//     command that settles it (approve, reject, send, resume). A run
//     that waits only to retry an activity (status waiting, waiting for
//     "activity ...") is not waiting on anyone: watch goes on;
//   - when it is interrupted (Ctrl-C: ctx is done): stopping a watch is
//     not a failure, whatever the run is doing. It says so and prints the
//     run's status.
//
// With --follow it prints what the run waits for each time it starts to
// wait, and watches on until the run ends. --timeout bounds the whole
// watch: when it runs out, watch stops with exit status 1, so that a
// script that waits with watch --follow --timeout can tell. An unknown
// run is an error, exit status 1.
//
// --json prints each new event as a JSON object (backend.Event) on a
// line of its own, and, when watch stops for whatever reason, a last line
// with the run's record (backend.RunInfo) as watch last read it; no
// summary, progress or wait lines.
//
// --live also prints the live events of an agent run (agent.Runtime's
// feed) between the rows: the model's text as it is written, and tool
// calls as they start, fail and finish. Live events are those published
// after the watch started; they are a view, and may come a little before
// or after the rows of the events they belong to. --live does not go
// with --json.
func watchCommand() *command {
	var wf watchFlags
	return &command{
		name:    "watch",
		args:    "RUN [--follow] [--live] [--timeout D]",
		summary: "Follow a live run until it ends or waits.",
		store:   true,
		nargs:   exactly(1),
		flags: func(fs *flag.FlagSet, o *opts) {
			fs.BoolVar(&wf.follow, "follow", false, "watch on through waits (approvals, signals, timers, parked) until the run ends")
			fs.BoolVar(&o.live, "live", false, "also print the live events of an agent run: model text as it is written, tool calls")
			fs.DurationVar(&o.timeout, "timeout", 0, "stop watching after this long, with exit status 1 (0: no limit)")
			fs.BoolVar(&o.json, "json", false, "print each new event as JSON, one a line, then the run's record")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			return cmdWatch(ctx, e, args[0], wf)
		},
	}
}

func cmdWatch(ctx context.Context, e *env, runID string, wf watchFlags) error {
	if e.o.live && e.o.json {
		return usageError("--live does not go with --json")
	}
	if e.o.timeout < 0 {
		return usageError("--timeout %v: not a duration to wait", e.o.timeout)
	}
	parent := ctx
	if e.o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.o.timeout)
		defer cancel()
	}
	info, err := e.client.Describe(ctx, runID)
	if err != nil {
		return err
	}
	w := &watcher{e: e, id: runID, follow: wf.follow, con: &console{w: e.out}, gen: -1, info: info}
	if !e.o.json {
		w.con.line(summaryLine(info))
	}
	if e.o.live {
		w.stopLive = w.startLive(ctx)
	}
	err = w.watch(ctx)
	w.endLive(false)
	if e.o.json {
		// The last line is the record, however the watch stopped.
		if jerr := json.NewEncoder(e.out).Encode(w.info); err == nil {
			err = jerr
		}
	}
	switch {
	case err == nil:
		return nil
	case parent.Err() != nil:
		// Interrupted: the person watching stopped it.
		if !e.o.json {
			w.con.line(fmt.Sprintf("Stopped watching run %s: interrupted; it is %s.", runID, w.info.Status))
		}
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("timed out after %v: run %s is %s", e.o.timeout, runID, w.info.Status)
	}
	return err
}

// watcher is the state of one watch.
type watcher struct {
	e      *env
	id     string
	follow bool
	con    *console

	// info is the run's record as last read.
	info backend.RunInfo
	// gen is the generation whose history is being read (-1: none yet);
	// next is the position of its next event to read.
	gen  int
	next int64
	// first is the generation's first event (the TIME column counts from
	// it), named the first command event of each step with a name (the
	// NAME of the step's other events); last is the last event read.
	first backend.Event
	named map[int]backend.Event
	last  backend.Event
	// widths are the widths of the columns of the rows so far (nil
	// before the header is printed).
	widths []int
	// progress and waited are the last progress line printed and the
	// last wait reported, so as not to repeat them.
	progress, waited string
	// stopLive stops printing live events (--live), nil if there is none.
	stopLive func(ended bool)
}

// endLive stops printing live events, if it does, after the last ones
// of a run that ended.
func (w *watcher) endLive(ended bool) {
	if w.stopLive != nil {
		w.stopLive(ended)
		w.stopLive = nil
	}
}

// watch prints the run's history as it grows, until the run ends, or
// waits and w does not follow, or ctx is done.
func (w *watcher) watch(ctx context.Context) error {
	for {
		if err := w.catchUp(ctx); err != nil {
			return err
		}
		w.report()
		switch st := w.info.Status; {
		case st.Terminal():
			w.endLive(true)
			w.outcome()
			return nil
		case waits(w.info):
			if !w.follow {
				w.endLive(false)
			}
			if err := w.reportWait(ctx); err != nil {
				return err
			}
			if !w.follow {
				if !w.e.o.json {
					w.con.line(fmt.Sprintf("Run %s waits; stopped watching (--follow watches on until it ends).", w.id))
				}
				return nil
			}
		default:
			w.waited = ""
		}
		if err := w.e.client.WaitCommit(ctx, w.info); err != nil {
			return err
		}
	}
}

// waits reports whether a run waits for something outside it: a person,
// a signal, a time, a child run, or fixed code. A run that waits only for
// an activity (status waiting, Waiting "activity NAME (step N)") does
// not: it waits to retry a failed attempt, or for another worker to
// finish one, and goes on by itself.
func waits(info backend.RunInfo) bool {
	switch info.Status {
	case backend.StatusAwaitingApproval, backend.StatusParked:
		return true
	case backend.StatusWaiting:
		return !strings.HasPrefix(info.Waiting, "activity ")
	}
	return false
}

// catchUp reads and prints the events committed since the last read, and
// sets w.info to a record of the run that holds no more events than
// those printed. Within a generation a history only grows, and the store
// changes a history and its record's HistoryLen together; so a record
// read after the history, of the same generation, with as many events as
// were read, is the record of exactly the events printed.
func (w *watcher) catchUp(ctx context.Context) error {
	for {
		before, err := w.e.client.Describe(ctx, w.id)
		if err != nil {
			return err
		}
		if before.Generation != w.gen {
			w.newGeneration(before.Generation)
		}
		entries, err := w.e.store.ReadHistory(ctx, w.id, w.next)
		if err != nil {
			return fmt.Errorf("run %s: read history: %w", w.id, err)
		}
		after, err := w.e.client.Describe(ctx, w.id)
		if err != nil {
			return err
		}
		if after.Generation != before.Generation {
			// The history read may be of either generation: read again.
			continue
		}
		events, err := backend.DecodeHistory(entries, w.next, w.e.shown())
		if err != nil {
			return fmt.Errorf("run %s: %w", w.id, err)
		}
		if err := w.print(events); err != nil {
			return err
		}
		w.next += int64(len(events))
		w.info = after
		if w.next-1 >= after.HistoryLen {
			return nil
		}
		// Events were committed after the history was read: read them
		// too before reporting on the record.
	}
}

// newGeneration starts reading the history of generation gen.
func (w *watcher) newGeneration(gen int) {
	if w.gen >= 0 && !w.e.o.json {
		w.con.line(fmt.Sprintf("Run %s continued as new: history %d starts.", w.id, gen))
	}
	w.gen, w.next = gen, 1
	w.first, w.named = backend.Event{}, map[int]backend.Event{}
}

// print prints events, the next ones of the history: as JSON, or as
// timeline rows.
func (w *watcher) print(events []backend.Event) error {
	if len(events) == 0 {
		return nil
	}
	w.last = events[len(events)-1]
	if w.e.o.json {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, ev := range events {
			if err := enc.Encode(ev); err != nil {
				return err
			}
		}
		w.con.raw(buf.String())
		return nil
	}
	// The timeline's rows of the new events, given what it needs of the
	// events before them: the first event and the names of their steps.
	if w.first.Seq == 0 {
		w.first = events[0]
	}
	for _, ev := range events {
		if _, ok := w.named[ev.Step]; !ok && ev.Step > 0 && ev.Type.IsCommand() && ev.Name != "" {
			w.named[ev.Step] = ev
		}
	}
	before := []backend.Event{w.first}
	steps := map[int]bool{}
	for _, ev := range events {
		if named, ok := w.named[ev.Step]; ok && !steps[ev.Step] {
			steps[ev.Step] = true
			before = append(before, named)
		}
	}
	header, rows := durable.Timeline(append(before, events...))
	rows = rows[len(before):]
	var buf strings.Builder
	if w.widths == nil {
		w.widths = make([]int, len(header))
		w.grow(header)
		for _, r := range rows {
			w.grow(r)
		}
		buf.WriteString(w.format(header))
	}
	for _, r := range rows {
		w.grow(r)
		buf.WriteString(w.format(r))
	}
	w.con.write(buf.String())
	return nil
}

// minWidths are the least widths of the columns of watch's rows, so that
// rows of the usual events printed one by one line up.
var minWidths = []int{3, 4, 4, len(backend.EventActivityCompleted), 26, 7, 5}

// grow widens the columns to fit the cells of a row. A column only
// widens: rows printed already keep their place.
func (w *watcher) grow(cells []string) {
	for i, c := range cells {
		if i < len(w.widths) {
			n := len([]rune(c))
			if i < len(minWidths) {
				n = max(n, minWidths[i])
			}
			w.widths[i] = max(w.widths[i], n)
		}
	}
}

// format lays out a row in the columns, two spaces apart, the last
// column unpadded.
func (w *watcher) format(cells []string) string {
	var b strings.Builder
	for i, c := range cells {
		b.WriteString(c)
		if i < len(cells)-1 && i < len(w.widths) {
			b.WriteString(strings.Repeat(" ", w.widths[i]-len([]rune(c))+2))
		}
	}
	return strings.TrimRight(b.String(), " ") + "\n"
}

// summaryLine is a run's record in a line: what watch starts with.
func summaryLine(info backend.RunInfo) string {
	parts := []string{"Run " + info.ID, "workflow " + info.Workflow, "created " + formatTime(info.CreatedAt)}
	if info.ParentID != "" {
		parts = append(parts, fmt.Sprintf("child of %s (step %d)", info.ParentID, info.ParentStep))
	}
	if info.Generation > 0 {
		parts = append(parts, fmt.Sprintf("history %d", info.Generation))
	}
	if !info.Trace.IsZero() {
		parts = append(parts, "trace "+info.Trace.TraceID.String())
	}
	return strings.Join(parts, " · ")
}

// progressLine says where a run is: its status, step, number of events,
// what it waits for.
func progressLine(info backend.RunInfo) string {
	parts := []string{"status " + string(info.Status)}
	if info.Step > 0 {
		parts = append(parts, fmt.Sprintf("step %d", info.Step))
	}
	if info.HistoryLen == 1 {
		parts = append(parts, "1 event")
	} else {
		parts = append(parts, fmt.Sprintf("%d events", info.HistoryLen))
	}
	if info.Waiting != "" && !info.Status.Dormant() {
		parts = append(parts, "waiting for: "+info.Waiting)
	}
	if !info.WakeAt.IsZero() && !info.Status.Dormant() {
		parts = append(parts, "wakes "+formatTime(info.WakeAt))
	}
	return strings.Join(parts, " · ")
}

// report prints the progress line, if it says something new.
func (w *watcher) report() {
	if w.e.o.json {
		return
	}
	if p := progressLine(w.info); p != w.progress {
		w.progress = p
		w.con.line(p)
	}
}

// reportWait says what a waiting run waits for and how to settle it,
// once for each wait.
func (w *watcher) reportWait(ctx context.Context) error {
	if w.e.o.json {
		return nil
	}
	name := w.e.app.name()
	var lines []string
	switch {
	case w.info.Status == backend.StatusParked:
		lines = append(lines, "Parked: "+failureOf(w.info),
			fmt.Sprintf("  resume with: %s resume %s --by NAME (once the fix is deployed)", name, w.id))
	default:
		reqs, err := w.e.view.Pending(ctx, agent.PendingFilter{RunID: w.id})
		if err != nil {
			return err
		}
		for _, r := range reqs {
			if r.Kind == agent.KindQuestion {
				lines = append(lines, fmt.Sprintf("Waits for an answer to %s: %q (since %s)",
					r.CallID, cut(r.Question, 60), formatTime(r.RequestedAt)))
				continue
			}
			lines = append(lines,
				fmt.Sprintf("Waits for approval of %s: %s %s (since %s)", r.CallID, r.Tool, cut(r.Arguments, 60), formatTime(r.RequestedAt)),
				fmt.Sprintf("  approve with: %s approve %s %s --by NAME", name, w.id, r.CallID),
				fmt.Sprintf("  reject with:  %s reject %s %s --by NAME --reason TEXT", name, w.id, r.CallID))
		}
		if len(reqs) == 0 && strings.Contains(w.info.Waiting, "signal "+messageSignal) {
			lines = append(lines, fmt.Sprintf("Waits for a message; send one with: %s send %s MESSAGE", name, w.id))
		}
	}
	key := string(w.info.Status) + "\n" + w.info.Waiting + "\n" + strings.Join(lines, "\n")
	if key == w.waited {
		return nil
	}
	w.waited = key
	for _, l := range lines {
		w.con.line(l)
	}
	return nil
}

// messageSignal is the signal a conversation run waits on for the next
// user message (what agent.Runtime.Send sends).
const messageSignal = "cairn.message"

// outcome prints how the run ended.
func (w *watcher) outcome() {
	if w.e.o.json {
		return
	}
	info := w.info
	switch info.Status {
	case backend.StatusCompleted:
		w.con.line(fmt.Sprintf("Run %s completed.", w.id))
		if w.last.Type == backend.EventRunCompleted {
			w.con.line(resultText(w.last.Payload))
		}
	default:
		line := fmt.Sprintf("Run %s %s.", w.id, info.Status)
		if info.Failure != nil && info.Failure.Message != string(info.Status) {
			line = fmt.Sprintf("Run %s %s: %s", w.id, info.Status, info.Failure.Message)
		}
		w.con.line(line)
		if info.Failure != nil && info.Failure.Details != "" {
			w.con.line(indent(info.Failure.Details, "  "))
		}
	}
}

// resultText is a run's result as a person reads it: the answer's text
// of an agent's result (agent.RunResult), or else the result as compact
// JSON, cut short.
func resultText(payload json.RawMessage) string {
	var r struct {
		Text  *string `json:"text"`
		Agent string  `json:"agent"`
	}
	if json.Unmarshal(payload, &r) == nil && r.Text != nil && r.Agent != "" {
		return *r.Text
	}
	var buf bytes.Buffer
	if json.Compact(&buf, payload) != nil {
		return cut(string(payload), 500)
	}
	return cut(buf.String(), 500)
}
