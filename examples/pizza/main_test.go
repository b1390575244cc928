package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/internal/spantree"
)

// The lines the tools write when they act on the world, and the follower
// when it sees them start.
var (
	sideEffects = []string{"[shop] order", "[kitchen]", "[courier]", "[mail]"}
	toolNames   = []string{"take_order", "prepare_pizza", waitTool, "deliver_pizza", "send_receipt"}
)

const finalAnswer = "is on its way to 12 Via Roma, and the receipt is in your inbox. Enjoy!"

func TestRunInMemory(t *testing.T) {
	got := runExample(t, inmem.New())
	for _, tool := range toolNames {
		for _, line := range []string{"[tool] " + tool + " started", "[tool] " + tool + " finished"} {
			assert.Equal(t, 1, strings.Count(got, line), "times %q in:\n%s", line, got)
		}
	}
	for _, line := range sideEffects {
		assert.Equal(t, 1, strings.Count(got, line), "times %q in:\n%s", line, got)
	}
	inOrder(t, got, "Customer: One large margherita", "Run pizza-1 completed",
		"Final answer (5 turns", finalAnswer, "Workflow History", "SEQ  TIME", "side_effect", "workflow_tool_started",
		"timer_fired", "workflow_tool_finished", "tool:pizza/send_receipt", "run_completed")
}

// TestRunOnRedis runs the example twice on one Redis: the second time it
// shows the run that exists, and no tool runs again.
func TestRunOnRedis(t *testing.T) {
	store := openRedis(t)
	first := runExample(t, store)
	inOrder(t, first, "[shop] order", finalAnswer, "run_completed")

	again := runExample(t, store)
	inOrder(t, again, "Run pizza-1 exists already (completed)", "[tool] take_order started", finalAnswer, "run_completed")
	for _, line := range sideEffects {
		assert.NotContains(t, again, line, "the second run of the example did it again")
	}
}

// TestInterruptedRunCarriesOn stops the example while the pizza bakes, as
// Ctrl-C does, and runs it again: the run goes on from where it stopped,
// and every side effect happens once in all.
func TestInterruptedRunCarriesOn(t *testing.T) {
	for name, store := range map[string]func(*testing.T) backend.Store{
		"memory": func(*testing.T) backend.Store { return inmem.New() },
		"redis":  openRedis,
	} {
		t.Run(name, func(t *testing.T) {
			store := store(t)
			ctx, interrupt := context.WithTimeout(context.Background(), 20*time.Second)
			defer interrupt()
			out := &tripWriter{trip: "[tool] " + waitTool + " started", fn: interrupt}
			require.Error(t, run(ctx, out, store, scriptedWaiter(), 300*time.Millisecond),
				"the interrupted run returned no error:\n%s", out.String())
			before := out.String()
			require.NotContains(t, before, "[courier]", "delivered before the interruption")
			after := runExample(t, store)
			inOrder(t, after, "Run pizza-1 exists already (waiting)", "[courier]", finalAnswer, "run_completed")
			for _, line := range sideEffects {
				assert.Equal(t, 1, strings.Count(before+after, line), "times %q in all:\n%s\n---\n%s", line, before, after)
			}
		})
	}
}

// runExample runs the example with the scripted model and a short wait,
// and returns what it wrote.
func runExample(t *testing.T, store backend.Store) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, store, scriptedWaiter(), 10*time.Millisecond), "run:\n%s", out.String())
	return out.String()
}

// openRedis opens a store on a redis-server of the test's own.
func openRedis(t *testing.T) backend.Store {
	store, err := redis.Open(redistest.Start(t).URL())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	return store
}

// inOrder checks that got holds each of want, in order.
func inOrder(t *testing.T, got string, want ...string) {
	t.Helper()
	rest := got
	for _, w := range want {
		require.Contains(t, rest, w, "output lacks %q after what came before:\n%s", w, got)
		rest = rest[strings.Index(rest, w)+len(w):]
	}
}

// tripWriter keeps what is written, and calls fn once when it contains
// trip.
type tripWriter struct {
	trip string
	fn   func()

	mu    sync.Mutex
	buf   bytes.Buffer
	fired bool
}

func (w *tripWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if !w.fired && strings.Contains(w.buf.String(), w.trip) {
		w.fired = true
		w.fn()
	}
	return n, err
}

func (w *tripWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestTrace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, runWith(ctx, &out, inmem.New(), scriptedWaiter(), config{wait: 10 * time.Millisecond, trace: true}),
		"run:\n%s", out.String())
	got := out.String()
	_, tree, ok := strings.Cut(got, "\nTrace:\n")
	require.True(t, ok, "no trace:\n%s", got)
	inOrder(t, tree, "handle request", "invoke_agent pizza [completed", "chat", "execute_tool take_order [step")
	for _, tool := range toolNames {
		assert.Equal(t, 1, strings.Count(tree, "execute_tool "+tool+" [step"), "execute_tool %s spans in:\n%s", tool, tree)
	}
	assert.Equal(t, 5, strings.Count(tree, " chat "), "chat spans, one a turn, in:\n%s", tree)
	assert.Equal(t, 1, strings.Count(tree, " timer [step"), "timer spans in:\n%s", tree)
	assert.NoError(t, spantree.CheckOnce(tree), "%s", tree)
}
