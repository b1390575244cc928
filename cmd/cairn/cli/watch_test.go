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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	_, err := w.rt.Start(traced(), supportAgent(), "refund-9", agent.Input{Message: "Refund my 120 euros."})
	require.NoError(t, err)
	args := []string{"watch", "refund-9", "--follow"}
	wt := w.watchAsync(args...)
	wt.waitOutput("status pending")
	w.startWorker()
	wt.waitOutput("approve with:")
	require.NoError(t, w.rt.Decide(context.Background(), "refund-9", agent.Decision{CallID: "call_1_0", Approved: true, By: "alice", Reason: "ok"}))
	r := wt.result()
	require.Equal(t, 0, r.code, "exit status\nstdout:\n%s\nstderr:\n%s", r.out, r.err)
	history, err := w.rt.Run("refund-9").History(context.Background())
	require.NoError(t, err)
	checkRows(t, r.out, len(history))
	progress := progressLines(r.out)
	if assert.GreaterOrEqual(t, len(progress), 3, "progress lines:\n%s", strings.Join(progress, "\n")) {
		assert.Equal(t, "status pending · 1 event", progress[0], "the first progress line")
		assert.Equal(t, fmt.Sprintf("status completed · step 8 · %d events", len(history)), progress[len(progress)-1],
			"the last progress line")
	}
	// How commits batch decides which states the watch sees: the
	// progress lines are left out of the comparison.
	golden(t, "watch_follow", "$ cairn "+strings.Join(args, " ")+"\n"+withoutProgress(r.out))
}

// TestWatchLive watches an agent run with its live events.
func TestWatchLive(t *testing.T) {
	w := newWorld(t)
	w.stopWorker()
	_, err := w.rt.Start(traced(), supportAgent(), "refund-8", agent.Input{Message: "Refund my 120 euros."})
	require.NoError(t, err)
	wt := w.watchAsync("watch", "refund-8", "--follow", "--live")
	wt.waitOutput("status pending")
	w.startWorker()
	wt.waitOutput("approve with:")
	require.NoError(t, w.rt.Decide(context.Background(), "refund-8", agent.Decision{CallID: "call_1_0", Approved: true, By: "alice", Reason: "ok"}))
	r := wt.result()
	require.Equal(t, 0, r.code, "exit status\nstdout:\n%s\nstderr:\n%s", r.out, r.err)
	for _, want := range []string{
		`  | step 2: tool lookup_order started (call_0_0) {"order_id":"A-1001"}`,
		`  | step 2: tool lookup_order finished (call_0_0): "order A-1001: 2 pizzas, 120 euros, delivered cold"`,
		`  | step 7: tool refund finished (call_1_0): "refunded 120 euros on A-1001"`,
	} {
		assert.Contains(t, r.out, want+"\n", "no line %q", want)
	}
	// Live lines come between the rows, which are all there, once.
	var rows []string
	for _, l := range strings.Split(r.out, "\n") {
		if !strings.HasPrefix(l, "  | ") {
			rows = append(rows, l)
		}
	}
	history, err := w.rt.Run("refund-8").History(context.Background())
	require.NoError(t, err)
	checkRows(t, strings.Join(rows, "\n"), len(history))
}

// TestWatchJSON reads watch --json line by line: events, then the record.
func TestWatchJSON(t *testing.T) {
	w := newWorld(t)
	w.start(supportAgent(), "refund-3", agent.Input{Message: "Refund 120 euros."}, backend.StatusAwaitingApproval)
	r := w.cairn("watch", "refund-3", "--json")
	require.Equal(t, 0, r.code, "exit status; stderr: %s", r.err)
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	last := lines[len(lines)-1]
	var info backend.RunInfo
	require.NoError(t, json.Unmarshal([]byte(last), &info), "last line %q", last)
	require.Equal(t, "refund-3", info.ID, "last line %q", last)
	require.Equal(t, backend.StatusAwaitingApproval, info.Status, "last line %q", last)
	require.Equal(t, int64(len(lines)-1), info.HistoryLen, "last line %q: HistoryLen, the lines of events before it", last)
	for i, l := range lines[:len(lines)-1] {
		var e backend.Event
		assert.NoError(t, json.Unmarshal([]byte(l), &e), "line %d %q", i+1, l)
		assert.Equal(t, int64(i+1), e.Seq, "line %d %q: seq", i+1, l)
	}

	// An ended run: its whole history, then its record.
	require.NoError(t, w.rt.Decide(context.Background(), "refund-3", agent.Decision{CallID: "call_1_0", Approved: true, By: "alice", Reason: "ok"}))
	w.waitStatus("refund-3", backend.StatusCompleted)
	r = w.cairn("watch", "refund-3", "--json", "--follow")
	lines = strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	assert.Equal(t, 0, r.code, "watch --json of an ended run: exit status; stderr: %s", r.err)
	assert.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &info), "watch --json of an ended run:\n%s", r.out)
	assert.Equal(t, backend.StatusCompleted, info.Status, "watch --json of an ended run")
	assert.Equal(t, int64(len(lines)-1), info.HistoryLen, "watch --json of an ended run: HistoryLen, the lines of events")
}

// TestWatchEnded watches runs that have ended, and a conversation that
// waits for a message.
func TestWatchEnded(t *testing.T) {
	w := newWorld(t)
	w.start(chatAgent(), "chat-1", agent.Input{Conversation: true}, backend.StatusWaiting)
	w.check("watch_chat", 0, "watch", "chat-1")
	require.NoError(t, w.rt.Run("chat-1").Cancel(context.Background()))
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
	assert.Equal(t, 1, r.code, "--timeout: exit status\nstdout:\n%s", r.out)
	assert.Equal(t, "cairn watch: timed out after 200ms: run chat-3 is waiting\n", r.err, "--timeout: stderr")

	ctx, cancel := context.WithCancel(context.Background())
	wt := w.watchAsyncCtx(ctx, "watch", "chat-3", "--follow")
	wt.waitOutput("send one with")
	cancel()
	r = wt.result()
	assert.Equal(t, 0, r.code, "interrupted: exit status")
	assert.True(t, strings.HasSuffix(r.out, "Stopped watching run chat-3: interrupted; it is waiting.\n"), "interrupted: stdout:\n%s", r.out)
	assert.Empty(t, r.err, "interrupted: stderr")
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
	_, err := w.rt.Start(traced(), a, "flaky-1", agent.Input{Message: "go"})
	require.NoError(t, err)
	info := w.waitStatus("flaky-1", backend.StatusWaiting)
	r := w.cairn("watch", "flaky-1", "--timeout", "300ms")
	assert.Equal(t, 1, r.code, "exit status")
	assert.Equal(t, "cairn watch: timed out after 300ms: run flaky-1 is waiting\n", r.err, "stderr")
	assert.Contains(t, r.out, "retry +1s: tool flaky: busy\n")
	assert.True(t, strings.HasSuffix(r.out, "waiting for: "+info.Waiting+" · wakes 2026-01-01 09:00:01\n"), "stdout:\n%s", r.out)
}

// TestWatchContinued follows a conversation into the history it
// continues as new with.
func TestWatchContinued(t *testing.T) {
	chat := chatAgent()
	chat.ConversationLimit = 1
	w := newWorld(t, chat)
	w.stopWorker()
	_, err := w.rt.Start(traced(), chat, "chat-9", agent.Input{Conversation: true, Message: "one"})
	require.NoError(t, err)
	wt := w.watchAsync("watch", "chat-9", "--follow")
	wt.waitOutput("status pending")
	w.startWorker()
	wt.waitOutput("send one with")
	require.NoError(t, w.rt.End(context.Background(), "chat-9"))
	r := wt.result()
	old, fresh, cont := strings.Cut(r.out, "Run chat-9 continued as new: history 1 starts.\n")
	require.Equal(t, 0, r.code, "exit status\nstdout:\n%s\nstderr:\n%s", r.out, r.err)
	require.True(t, cont, "the watch does not follow the run into its new history:\n%s", r.out)
	require.True(t, strings.HasSuffix(r.out, "Run chat-9 completed.\nYou said: one\n"), "stdout:\n%s", r.out)
	history, err := w.rt.Run("chat-9").History(context.Background())
	require.NoError(t, err)
	checkRows(t, fresh, len(history))
	// The old history is printed from its start, as far as the watch
	// read it before it was replaced.
	assert.Contains(t, old, "\n1    +0s         run_started ", "the old history")
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
	assert.Equal(t, want, seqs, "rows of events in:\n%s", out)
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
	require.EventuallyWithT(a.t, func(c *assert.CollectT) {
		assert.Contains(c, a.out.String(), s, "stderr:\n%s", a.err.String())
	}, 10*time.Second, 2*time.Millisecond, "no %q in the output", s)
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
