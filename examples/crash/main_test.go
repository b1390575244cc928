package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestMain runs the test binary as a worker when run tells it to: the
// workers of these tests are this binary run again, as those of the
// example are the example's binary.
func TestMain(m *testing.M) {
	if isWorker() {
		if err := runWorker(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "crash worker:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCrash runs the example end to end, killing worker 1 in each tool in
// turn, on miniredis (the default) and on a real redis-server. Each case
// has a Redis of its own: workers take any run of the agent, and their
// tools record their changes under their own case's prefix.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs the example end to end 8 times, killing a worker process with SIGKILL in each tool and waiting for its lease to expire; run without -short")
	}
	backends := map[string]func(t *testing.T) string{
		"miniredis": func(t *testing.T) string {
			m := miniredis.NewMiniRedis()
			require.NoError(t, m.StartAddr("127.0.0.1:0"))
			t.Cleanup(m.Close)
			return "redis://" + m.Addr() + "/0"
		},
		"redis-server": func(t *testing.T) string { return redistest.Start(t).URL() },
	}
	for name, start := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, tool := range toolNames {
				t.Run("kill_in_"+tool, func(t *testing.T) {
					t.Parallel()
					testCrash(t, start(t), tool)
				})
			}
		})
	}
}

func testCrash(t *testing.T, url, killIn string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	rep, err := run(ctx, &out, config{RedisURL: url, KillIn: killIn, Lease: time.Second, Model: "scripted",
		Stderr: testLog{t}, Timeout: 30 * time.Second})
	require.NoError(t, err, "run:\n%s", out.String())
	got := out.String()
	t.Logf("output:\n%s", got)
	require.True(t, rep.Killed, "worker 1 was not killed")

	// Every change was made exactly once; the tool cut off by the kill
	// was called twice, with one idempotency key.
	for _, tool := range toolNames {
		want := effectCount{Effects: 1, Calls: 1}
		if tool == killIn {
			want.Calls = 2
		}
		assert.Equal(t, want, rep.Effects[tool], "%s: changes and calls", tool)
		assert.Contains(t, got, fmt.Sprintf("  %-18s 1 ", tool+":"), "the output does not count %s once", tool)
	}

	// The answer names the references the services recorded: the retried
	// call got the first call's reference back.
	ref := map[string]string{}
	for field, r := range rep.Refs {
		tool, _, _ := strings.Cut(field, " ")
		assert.NotContains(t, ref, tool, "%s recorded two changes: %v", tool, rep.Refs)
		ref[tool] = r
	}
	want := answer(flight{Booking: ref["reserve_flight"], Flight: "TP 433"},
		hotel{Booking: ref["reserve_hotel"], Hotel: "Alfama Terrace", Nights: 3},
		charge{Charge: ref["charge_card"], AmountEUR: 212 + 3*180},
		mail{MessageID: ref["send_confirmation"]})
	assert.Equal(t, want, rep.Result.Text, "answer")
	assert.Contains(t, got, "Answer: "+want, "the output does not show the answer")

	// History shows the attempt lost with worker 1.
	lost := false
	name := map[int]string{}
	for _, e := range rep.History {
		if e.Type == backend.EventActivityScheduled {
			name[e.Step] = e.Name
		}
		if e.Type == backend.EventActivityAttemptFailed && e.Failure != nil && e.Failure.Kind == backend.KindLost {
			assert.Equal(t, "tool:"+agentName+"/"+killIn, name[e.Step], "the activity of the lost attempt")
			lost = true
		}
	}
	assert.True(t, lost, "no lost attempt in history")

	// The narrative, in order.
	rest := got
	for _, step := range []string{
		"Starting worker 1 (pid ",
		"worker 1 | " + killIn + " started (attempt 1,",
		"killing worker 1 (SIGKILL) during " + killIn,
		"Starting worker 2 (pid ",
		"worker 2 | " + killIn + " started (attempt 2,",
		"worker 2 | " + killIn + ": the service has seen this key",
		"worker 2 | model, turn 4: final answer",
		"Answer: ",
		"activity_attempt_failed",
		"run_completed",
	} {
		require.Contains(t, rest, step, "the output lacks %q after what came before", step)
		rest = rest[strings.Index(rest, step)+len(step):]
	}
	// Worker 2 replayed the turns that worker 1 had finished: it did not
	// call the model for them again.
	k := slices.Index(toolNames, killIn)
	for turn := 0; turn <= k; turn++ {
		assert.NotContains(t, got, fmt.Sprintf("worker 2 | model, turn %d:", turn), "worker 2 called the model again for turn %d", turn)
	}
}

func TestUnknownTool(t *testing.T) {
	_, err := run(context.Background(), &bytes.Buffer{}, config{KillIn: "book_taxi"})
	assert.ErrorContains(t, err, "book_taxi")
}

// testLog writes the workers' logs to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
