package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/internal/syncbuf"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// TestWatchAwaitingApproval watches a run that waits for approval: the
// history so far, what it waits for, how to approve, and exit 0.
func TestWatchAwaitingApproval(t *testing.T) {
	w := newWorld(t)
	w.start(supportAgent(), "refund-1", agent.Input{Message: "My pizza came cold, refund my 120 euros."},
		backend.StatusAwaitingApproval)
	w.check("watch_awaiting", 0, "watch", "refund-1")
	w.check("watch_help", 0, "watch", "--help")
}

// TestWatchFollow watches a run from its start to its end, through an
// approval: every event is printed once, in order.
func TestWatchFollow(t *testing.T) {
	w := newWorld(t)
	w.stopWorker()
	if _, err := w.rt.Start(traced(), supportAgent(), "refund-9", agent.Input{Message: "Refund my 120 euros."}); err != nil {
		t.Fatal(err)
	}
	args := []string{"watch", "refund-9", "--follow"}
	wt := w.watchAsync(args...)
	wt.waitOutput("status pending")
	w.startWorker()
	wt.waitOutput("approve with:")
	if err := w.rt.Decide(context.Background(), "refund-9", agent.Decision{CallID: "call_1_0", Approved: true, By: "alice", Reason: "ok"}); err != nil {
		t.Fatal(err)
	}
	r := wt.result()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	history, err := w.rt.Run("refund-9").History(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, r.out, len(history))
	progress := progressLines(r.out)
	if len(progress) < 3 || progress[0] != "status pending · 1 event" ||
		progress[len(progress)-1] != fmt.Sprintf("status completed · step 7 · %d events", len(history)) {
		t.Errorf("progress lines:\n%s", strings.Join(progress, "\n"))
	}
	// How commits batch decides which states the watch sees: the
	// progress lines are left out of the comparison.
	golden(t, "watch_follow", "$ cairn "+strings.Join(args, " ")+"\n"+withoutProgress(r.out))
}

// TestWatchLive watches an agent run with its live events.
func TestWatchLive(t *testing.T) {
	w := newWorld(t)
	w.stopWorker()
	if _, err := w.rt.Start(traced(), supportAgent(), "refund-8", agent.Input{Message: "Refund my 120 euros."}); err != nil {
		t.Fatal(err)
	}
	wt := w.watchAsync("watch", "refund-8", "--follow", "--live")
	wt.waitOutput("status pending")
	w.startWorker()
	wt.waitOutput("approve with:")
	if err := w.rt.Decide(context.Background(), "refund-8", agent.Decision{CallID: "call_1_0", Approved: true, By: "alice", Reason: "ok"}); err != nil {
		t.Fatal(err)
	}
	r := wt.result()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	for _, want := range []string{
		`  | step 2: tool lookup_order started (call_0_0) {"order_id":"A-1001"}`,
		`  | step 2: tool lookup_order finished (call_0_0): "order A-1001: 2 pizzas, 120 euros, delivered cold"`,
		`  | step 6: tool refund finished (call_1_0): "refunded 120 euros on A-1001"`,
	} {
		if !strings.Contains(r.out, want+"\n") {
			t.Errorf("no line %q in:\n%s", want, r.out)
		}
	}
	// Live lines come between the rows, which are all there, once.
	var rows []string
	for _, l := range strings.Split(r.out, "\n") {
		if !strings.HasPrefix(l, "  | ") {
			rows = append(rows, l)
		}
	}
	history, err := w.rt.Run("refund-8").History(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, strings.Join(rows, "\n"), len(history))
}

// TestWatchJSON reads watch --json line by line: events, then the record.
func TestWatchJSON(t *testing.T) {
	w := newWorld(t)
	w.start(supportAgent(), "refund-3", agent.Input{Message: "Refund 120 euros."}, backend.StatusAwaitingApproval)
	r := w.cairn("watch", "refund-3", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	var info backend.RunInfo
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &info); err != nil || info.ID != "refund-3" ||
		info.Status != backend.StatusAwaitingApproval || info.HistoryLen != int64(len(lines)-1) {
		t.Fatalf("last line %q: %+v, %v", lines[len(lines)-1], info, err)
	}
	for i, l := range lines[:len(lines)-1] {
		var e backend.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Seq != int64(i+1) {
			t.Errorf("line %d %q: seq %d, %v", i+1, l, e.Seq, err)
		}
	}

	// An ended run: its whole history, then its record.
	if err := w.rt.Decide(context.Background(), "refund-3", agent.Decision{CallID: "call_1_0", Approved: true, By: "alice", Reason: "ok"}); err != nil {
		t.Fatal(err)
	}
	w.waitStatus("refund-3", backend.StatusCompleted)
	r = w.cairn("watch", "refund-3", "--json", "--follow")
	lines = strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	if r.code != 0 || json.Unmarshal([]byte(lines[len(lines)-1]), &info) != nil || info.Status != backend.StatusCompleted ||
		info.HistoryLen != int64(len(lines)-1) {
		t.Errorf("watch --json of an ended run: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// TestWatchEnded watches runs that have ended, and a conversation that
// waits for a message.
func TestWatchEnded(t *testing.T) {
	w := newWorld(t)
	w.start(chatAgent(), "chat-1", agent.Input{Conversation: true}, backend.StatusWaiting)
	w.check("watch_chat", 0, "watch", "chat-1")
	if err := w.rt.Run("chat-1").Cancel(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.waitStatus("chat-1", backend.StatusCanceled)
	w.check("watch_canceled", 0, "watch", "chat-1")
	w.start(chatAgent(), "chat-2", agent.Input{Message: "hi"}, backend.StatusCompleted)
	w.check("watch_completed", 0, "watch", "chat-2")
}

// TestWatchStops: an unknown run, bad flags, --timeout, an interrupt.
func TestWatchStops(t *testing.T) {
	w := newWorld(t)
	w.check("watch_unknown_run", 1, "watch", "no-such-run")
	w.check("watch_live_json", 2, "watch", "no-such-run", "--live", "--json")

	w.start(chatAgent(), "chat-3", agent.Input{Conversation: true}, backend.StatusWaiting)
	r := w.cairn("watch", "chat-3", "--follow", "--timeout", "200ms")
	if r.code != 1 || r.err != "cairn watch: timed out after 200ms: run chat-3 is waiting\n" {
		t.Errorf("--timeout: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	wt := w.watchAsyncCtx(ctx, "watch", "chat-3", "--follow")
	wt.waitOutput("send one with")
	cancel()
	r = wt.result()
	if r.code != 0 || !strings.HasSuffix(r.out, "Stopped watching run chat-3: interrupted; it is waiting.\n") || r.err != "" {
		t.Errorf("interrupted: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
}

// TestWatchRetry: a run that waits to retry a tool call goes on by
// itself, so watch goes on watching it, without --follow. (The clock
// stands still: the retry never comes, and --timeout stops the watch.)
func TestWatchRetry(t *testing.T) {
	type args struct{}
	set := must(tools.NewSet(tools.MustNew("flaky", "Fails.", func(ctx context.Context, in args) (string, error) {
		return "", tools.Retryable(errors.New("busy"))
	})))
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		return calls(providers.ToolCall{Name: "flaky", Arguments: `{}`}), nil
	})
	a := &agent.Agent{Name: "flaky", Model: model, Tools: set}
	w := newWorld(t, a)
	if _, err := w.rt.Start(traced(), a, "flaky-1", agent.Input{Message: "go"}); err != nil {
		t.Fatal(err)
	}
	info := w.waitStatus("flaky-1", backend.StatusWaiting)
	r := w.cairn("watch", "flaky-1", "--timeout", "300ms")
	if r.code != 1 || r.err != "cairn watch: timed out after 300ms: run flaky-1 is waiting\n" ||
		!strings.Contains(r.out, "retry +1s: tool flaky: busy\n") ||
		!strings.HasSuffix(r.out, "waiting for: "+info.Waiting+" · wakes 2026-01-01 09:00:01\n") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
}

// TestWatchContinued follows a conversation into the history it
// continues as new with.
func TestWatchContinued(t *testing.T) {
	chat := chatAgent()
	chat.ConversationLimit = 1
	w := newWorld(t, chat)
	w.stopWorker()
	if _, err := w.rt.Start(traced(), chat, "chat-9", agent.Input{Conversation: true, Message: "one"}); err != nil {
		t.Fatal(err)
	}
	wt := w.watchAsync("watch", "chat-9", "--follow")
	wt.waitOutput("status pending")
	w.startWorker()
	wt.waitOutput("send one with")
	if err := w.rt.End(context.Background(), "chat-9"); err != nil {
		t.Fatal(err)
	}
	r := wt.result()
	old, fresh, cont := strings.Cut(r.out, "Run chat-9 continued as new: history 1 starts.\n")
	if r.code != 0 || !cont || !strings.HasSuffix(r.out, "Run chat-9 completed.\nYou said: one\n") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	history, err := w.rt.Run("chat-9").History(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, fresh, len(history))
	// The old history is printed from its start, as far as the watch
	// read it before it was replaced.
	if !strings.Contains(old, "\n1    +0s         run_started ") {
		t.Errorf("the old history:\n%s", old)
	}
}

// row is a timeline row: its sequence number first.
var row = regexp.MustCompile(`^(\d+) +\+`)

// checkRows checks that out has the rows of events 1 to n, once each, in
// order.
func checkRows(t *testing.T, out string, n int) {
	t.Helper()
	var seqs []string
	for _, l := range strings.Split(out, "\n") {
		if m := row.FindStringSubmatch(l); m != nil {
			seqs = append(seqs, m[1])
		}
	}
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprint(i))
	}
	if strings.Join(seqs, ",") != strings.Join(want, ",") {
		t.Errorf("rows of events %v, want %v:\n%s", seqs, want, out)
	}
}

func progressLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "status ") {
			lines = append(lines, l)
		}
	}
	return lines
}

func withoutProgress(out string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(out, "\n") {
		if !strings.HasPrefix(l, "status ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// asyncRun is a command line running in the background.
type asyncRun struct {
	t        *testing.T
	out, err syncbuf.Buffer
	done     chan int
}

func (w *world) watchAsync(args ...string) *asyncRun {
	return w.watchAsyncCtx(context.Background(), args...)
}

func (w *world) watchAsyncCtx(ctx context.Context, args ...string) *asyncRun {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	a := &asyncRun{t: w.t, done: make(chan int, 1)}
	go func() {
		defer cancel()
		a.done <- w.app.Run(ctx, args, &a.out, &a.err)
	}()
	return a
}

// waitOutput waits until the command has written s.
func (a *asyncRun) waitOutput(s string) {
	a.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(a.out.String(), s) {
		if time.Now().After(deadline) {
			a.t.Fatalf("no %q in the output:\n%s\nstderr:\n%s", s, a.out.String(), a.err.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// result waits for the command to end.
func (a *asyncRun) result() result {
	a.t.Helper()
	select {
	case code := <-a.done:
		return result{out: a.out.String(), err: a.err.String(), code: code}
	case <-time.After(20 * time.Second):
		a.t.Fatalf("the command did not end:\n%s\nstderr:\n%s", a.out.String(), a.err.String())
		return result{}
	}
}
