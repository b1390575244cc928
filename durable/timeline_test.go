package durable_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
)

var update = flag.Bool("update", false, "rewrite golden files")

// tlStart is the time of the first event of the histories written here.
var tlStart = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// tlAt is tlStart plus d.
func tlAt(d time.Duration) time.Time { return tlStart.Add(d) }

func TestWriteTimeline(t *testing.T) {
	long := `"` + strings.Repeat("ab", 50) + `"`
	tests := []struct {
		name   string
		events []backend.Event
		// last is the expected last row, spaces squeezed to one.
		last string
	}{
		{"empty", nil, "SEQ TIME STEP EVENT NAME ATTEMPT TOOK DETAIL"},
		{"how long the work took", []backend.Event{
			{Seq: 1, Type: backend.EventActivityScheduled, Time: tlStart, Step: 1, Attempt: 1, Name: "charge"},
			{Seq: 2, Type: backend.EventActivityCompleted, Time: tlAt(1500 * time.Millisecond), Started: tlAt(250 * time.Millisecond),
				Step: 1, Attempt: 1, Payload: json.RawMessage(`1`)},
		}, `2 +1.5s 1 activity_completed charge 1 1.25s 1`},
		{"completion named by its command", []backend.Event{
			{Seq: 1, Type: backend.EventRunStarted, Time: tlStart, Name: "checkout"},
			{Seq: 2, Type: backend.EventActivityScheduled, Time: tlStart, Step: 1, Attempt: 1, Name: "charge"},
			{Seq: 3, Type: backend.EventActivityCompleted, Time: tlAt(1500 * time.Millisecond), Step: 1, Attempt: 1, Payload: json.RawMessage(`{"ok": true}`)},
		}, `3 +1.5s 1 activity_completed charge 1 {"ok":true}`},
		{"time rounded to ms", []backend.Event{
			{Seq: 1, Type: backend.EventRunStarted, Time: tlStart, Name: "w"},
			{Seq: 2, Type: backend.EventRunCompleted, Time: tlAt(5*time.Second + 3400*time.Microsecond), Payload: json.RawMessage(`1`)},
		}, `2 +5.003s run_completed 1`},
		{"timer", []backend.Event{
			{Seq: 1, Type: backend.EventRunStarted, Time: tlStart, Name: "w"},
			{Seq: 2, Type: backend.EventTimerStarted, Time: tlAt(time.Second), Step: 1, FireAt: tlAt(6 * time.Second)},
		}, `2 +1s 1 timer_started fires +5s`},
		{"retry", []backend.Event{
			{Seq: 1, Type: backend.EventActivityScheduled, Time: tlStart, Step: 1, Attempt: 1, Name: "charge"},
			{Seq: 2, Type: backend.EventActivityAttemptFailed, Time: tlAt(time.Second), Step: 1, Attempt: 1,
				FireAt: tlAt(3 * time.Second), Failure: &backend.Failure{Message: "bank unreachable"}},
		}, `2 +1s 1 activity_attempt_failed charge 1 retry +2s: bank unreachable`},
		{"final failure", []backend.Event{
			{Seq: 1, Type: backend.EventActivityScheduled, Time: tlStart, Step: 3, Attempt: 1, Name: "charge"},
			{Seq: 2, Type: backend.EventActivityFailed, Time: tlStart, Step: 3, Attempt: 4,
				Failure: &backend.Failure{Message: "card declined", NonRetryable: true}},
		}, `2 +0s 3 activity_failed charge 4 card declined`},
		{"long payload cut to 60 runes", []backend.Event{
			{Seq: 1, Type: backend.EventRunCompleted, Time: tlStart, Payload: json.RawMessage(long)},
		}, `1 +0s run_completed ` + long[:59] + "…"},
		{"signal", []backend.Event{
			{Seq: 1, Type: backend.EventSignalReceived, Time: tlStart, Name: "approve", Payload: json.RawMessage(`{"ok":true}`), Sender: "ana"},
		}, `1 +0s signal_received approve {"ok":true} from ana`},
		{"version", []backend.Event{
			{Seq: 1, Type: backend.EventVersion, Time: tlStart, Name: "add-discount", Version: 2},
		}, `1 +0s version add-discount version 2`},
		{"child", []backend.Event{
			{Seq: 1, Type: backend.EventChildStarted, Time: tlStart, Step: 2, Name: "ship", RunID: "order-1/0/2"},
			{Seq: 2, Type: backend.EventChildCompleted, Time: tlAt(time.Minute), Step: 2, RunID: "order-1/0/2", Payload: json.RawMessage(`"shipped"`)},
		}, `2 +1m0s 2 child_completed ship "shipped"`},
		{"control characters stay in their cell", []backend.Event{
			{Seq: 1, Type: backend.EventRunStarted, Time: tlStart, Name: "w"},
			{Seq: 2, Type: backend.EventSignalReceived, Time: tlStart, Name: "a\tb\nc", Payload: json.RawMessage("{\n\t\"k\": 1\n}")},
			{Seq: 3, Type: backend.EventRunFailed, Time: tlStart, Failure: &backend.Failure{Message: "bad\tline\nnext \xff"}},
		}, "3 +0s run_failed bad line next \uFFFD"},
		{"invalid JSON payload", []backend.Event{
			{Seq: 1, Type: backend.EventSideEffect, Time: tlStart, Step: 1, Payload: json.RawMessage(`{oops`)},
		}, `1 +0s 1 side_effect {oops`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, durable.WriteTimeline(&buf, tt.events))
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			require.Len(t, lines, len(tt.events)+1, "lines for %d events", len(tt.events))
			assert.Equal(t, tt.last, strings.Join(strings.Fields(lines[len(lines)-1]), " "), "last row")
			checkTimelineAligned(t, lines)
		})
	}
}

// checkTimelineAligned checks that every row's EVENT cell starts in the column of
// the header's EVENT, and that no line ends in a space.
func checkTimelineAligned(t *testing.T, lines []string) {
	t.Helper()
	col := utf8.RuneCountInString(lines[0][:strings.Index(lines[0], "EVENT")])
	for _, line := range lines {
		r := []rune(line)
		aligned := len(r) > col && r[col-1] == ' ' && r[col] != ' '
		assert.True(t, aligned, "row not aligned at column %d: %q", col, line)
		assert.False(t, strings.HasSuffix(line, " "), "row ends in a space: %q", line)
	}
}

// TestWriteTimelineGolden renders a history with every kind of event.
// Run with -update to rewrite testdata/timeline.golden.
func TestWriteTimelineGolden(t *testing.T) {
	ms := time.Millisecond
	events := []backend.Event{
		{Type: backend.EventRunStarted, Time: tlStart, Name: "PizzaOrder", Payload: json.RawMessage(`"margherita"`), Seed: 42},
		{Type: backend.EventVersion, Time: tlStart, Name: "oven-v2", Version: 1},
		{Type: backend.EventSideEffect, Time: tlStart, Step: 1, Payload: json.RawMessage(`"5b1c9e0a-7d1e-4c39-a2f4-0f6b2d3c4e5f"`)},
		{Type: backend.EventActivityScheduled, Time: tlStart, Step: 2, Attempt: 1, Name: "TakeOrder", InputHash: "ab12"},
		{Type: backend.EventActivityCompleted, Time: tlAt(3 * ms), Started: tlStart, Step: 2, Attempt: 1, Payload: json.RawMessage(`"order-pizza-1-0-2"`)},
		{Type: backend.EventActivityScheduled, Time: tlAt(3 * ms), Step: 3, Attempt: 1, Name: "PreparePizza", InputHash: "cd34"},
		{Type: backend.EventActivityAttemptFailed, Time: tlAt(250 * ms), Step: 3, Attempt: 1, FireAt: tlAt(1250 * ms),
			Failure: &backend.Failure{Message: "oven not hot yet", Type: "*errors.errorString"}},
		{Type: backend.EventActivityAttemptStarted, Time: tlAt(1250 * ms), Step: 3, Attempt: 2},
		{Type: backend.EventActivityCompleted, Time: tlAt(1304 * ms), Step: 3, Attempt: 2,
			Payload: json.RawMessage(`{"order": "order-pizza-1-0-2", "pizza": "margherita", "toppings": ["basil", "mozzarella", "tomato"]}`)},
		{Type: backend.EventTimerStarted, Time: tlAt(1304 * ms), Step: 4, FireAt: tlAt(6304 * ms)},
		{Type: backend.EventSignalReceived, Time: tlAt(2 * time.Second), Name: "note", Payload: json.RawMessage(`"ring twice"`), Sender: "customer"},
		{Type: backend.EventTimerFired, Time: tlAt(6307 * ms), Started: tlAt(1304 * ms), Step: 4},
		{Type: backend.EventChildStarted, Time: tlAt(6307 * ms), Step: 5, Name: "Delivery", RunID: "pizza-1/0/5", InputHash: "ef56"},
		{Type: backend.EventChildCompleted, Time: tlAt(9 * time.Minute), Step: 5, RunID: "pizza-1/0/5", Payload: json.RawMessage(`"delivered"`)},
		{Type: backend.EventTimerStarted, Time: tlAt(9 * time.Minute), Step: 6, FireAt: tlAt(69 * time.Minute)},
		{Type: backend.EventTimerCanceled, Time: tlAt(9 * time.Minute), Step: 6},
		{Type: backend.EventActivityScheduled, Time: tlAt(9 * time.Minute), Step: 7, Attempt: 1, Name: "SendReceipt", InputHash: "0789"},
		{Type: backend.EventActivityFailed, Time: tlAt(9*time.Minute + 10*time.Second), Step: 7, Attempt: 1,
			Failure: &backend.Failure{Message: "activity SendReceipt timed out after 10s", Kind: backend.KindTimeout}},
		{Type: backend.EventCancelRequested, Time: tlAt(10 * time.Minute), Sender: "ops"},
		{Type: backend.EventRunCanceled, Time: tlAt(10 * time.Minute), Failure: &backend.Failure{Message: "canceled", Kind: backend.KindCanceled}},
	}
	for i := range events {
		events[i].Seq = int64(i + 1)
	}
	var buf bytes.Buffer
	require.NoError(t, durable.WriteTimeline(&buf, events))
	checkTimelineAligned(t, strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"))
	golden := filepath.Join("testdata", "timeline.golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test -run TestWriteTimelineGolden -update to create it")
	assert.Equal(t, string(want), buf.String(), "timeline differs from %s (run with -update if the change is intended)", golden)
}

// TestWriteTimelineOfRun renders the history of a real run: every
// activity row is named, whatever event it is.
func TestWriteTimelineOfRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	greet := durable.NewActivity("greet", func(ctx context.Context, name string) (string, error) {
		return "hello " + name, nil
	})
	wf := durable.NewWorkflow("greeter", func(ctx durable.Context, name string) (string, error) {
		if err := durable.Sleep(ctx, time.Millisecond); err != nil {
			return "", err
		}
		return durable.Execute(ctx, greet, name)
	})
	store := inmem.New()
	worker := durable.NewWorker(store, durable.WorkerOptions{Logger: quietLogger()})
	worker.Register(wf)
	client := durable.NewClient(store, durable.ClientOptions{})
	workerCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- worker.Run(workerCtx) }()
	defer func() {
		stop()
		assert.NoError(t, <-done, "worker")
	}()
	run, err := wf.Start(ctx, client, "greet-1", "ana")
	require.NoError(t, err)
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hello ana", got)
	history, err := client.History(ctx, run.ID)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, durable.WriteTimeline(&buf, history))
	out := buf.String()
	for _, want := range []string{"run_started", "greeter", "timer_started", "fires +1ms", "timer_fired", "run_completed", `"hello ana"`} {
		assert.Contains(t, out, want, "timeline")
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "activity_") {
			assert.Contains(t, line, " greet ", "activity row without its name")
		}
	}
	checkTimelineAligned(t, strings.Split(strings.TrimSuffix(out, "\n"), "\n"))
}
