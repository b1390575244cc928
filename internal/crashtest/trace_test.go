package crashtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/internal/crashtest"
	"github.com/cairn-dev/cairn/internal/otlptest"
)

// TestAgentKillTraced runs the clerk under a caller's span with worker
// processes that export their spans over OTLP/HTTP to a receiver in the
// test, kills the first worker with SIGKILL inside a model call or a tool
// call, and lets a second one finish: the receiver must hold one trace,
// under the caller's span, with exactly one span per step (per attempt for
// model and tool calls) that history records, the attempt cut off by the
// kill reported as lost, and the run's span once.
//
// The workers send each span as it ends, or batch them as the README
// recommends (EnvExportEvery). A batching worker killed before it
// flushed loses its spans, and the heir sends them again (resent); one
// killed after it flushed and marked them (RunInfo.SpansExported) has
// them sent once, by itself.
func TestAgentKillTraced(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills traced worker processes with SIGKILL and waits for their leases to expire; run without -short")
	}
	want, _ := cleanClerkRun(t)
	never, often := crashtest.EnvExportEvery+"=1h", crashtest.EnvExportEvery+"=50ms"
	for _, tc := range []struct {
		name, env, stopped, cutOff string
		turn                       int // the cut-off step is the model call of this turn, or -1
		doomed, heir               string
		resent                     bool // the heir sends spans again
	}{
		{name: "model_1", env: crashtest.EnvStopInModel + "=1", stopped: crashtest.InModel + " 1", cutOff: "model 1", turn: 1},
		{name: "refund", env: crashtest.EnvStopInTool + "=refund", stopped: crashtest.Stopped, cutOff: "refund", turn: -1},
		{name: "model_1_batched_lost", env: crashtest.EnvStopInModel + "=1", stopped: crashtest.InModel + " 1", cutOff: "model 1", turn: 1,
			doomed: never, heir: often, resent: true},
		{name: "refund_batched_lost", env: crashtest.EnvStopInTool + "=refund", stopped: crashtest.Stopped, cutOff: "refund", turn: -1,
			doomed: never, heir: often, resent: true},
		{name: "model_1_batched_flushed", env: crashtest.EnvStopInModel + "=1", stopped: crashtest.InModel + " 1", cutOff: "model 1", turn: 1,
			doomed: often, heir: often},
		// Killed right after the commit that ends the run: the run keeps
		// its lease until its last spans are out, so the heir takes it
		// over when the lease expires and sends them.
		{name: "ended_batched_lost", env: crashtest.EnvStopAfterCommit + "=10", stopped: crashtest.Stopped, turn: noCutOff,
			doomed: never, heir: often, resent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := otlptest.NewReceiver(t)
			otlp := "OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.URL()
			exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(recv.Endpoint()), otlptracehttp.WithInsecure())
			require.NoError(t, err)
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			defer tp.Shutdown(context.Background())

			w := newAgentWorld(t)
			doomed := w.worker("doomed", tc.env, otlp, tc.doomed)
			ctx, caller := tp.Tracer("crashtest").Start(context.Background(), "handle request")
			_, err = w.rt.Start(ctx, w.clerk, clerkRun, agent.Input{Message: crashtest.ClerkMessage})
			require.NoError(t, err)
			caller.End()
			w.approveWhenAsked()
			doomed.WaitFor(tc.stopped)
			if tc.doomed == often {
				// Killed once its spans are out and marked.
				require.EventuallyWithT(t, func(c *assert.CollectT) {
					info := w.describe()
					assert.Equal(c, info.HistoryLen, info.SpansExported, "spans marked exported")
				}, 10*time.Second, 10*time.Millisecond)
			}
			before := len(recv.Spans())
			doomed.Kill()
			w.worker("heir", otlp, tc.heir)
			w.check(w.result(), want, expect{cutOff: tc.cutOff})

			var spans []otlptest.Span
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				spans = recv.Spans()
				assert.True(c, hasSpan(spans, "invoke_agent clerk"), "no run span; received %d spans", len(spans))
			}, 10*time.Second, 10*time.Millisecond)
			again := checkTrace(t, spans, w.history(), caller.SpanContext(), tc.turn)
			assert.Empty(t, recv.Errors(), "the receiver refused requests")
			resent := 0
			for _, s := range spans {
				if s.Attributes["cairn.resent"] == true {
					resent++
				}
			}
			t.Logf("the doomed worker's spans that arrived before the kill: %d; sent again by the heir: %d, of which %d had arrived",
				before-1, resent, again)
			switch {
			case tc.resent:
				assert.Zero(t, before-1, "spans of the doomed worker arrived before the kill")
				assert.Positive(t, resent, "spans sent again by the heir")
				assert.Zero(t, again, "spans that arrived twice")
			case tc.doomed == often:
				assert.Zero(t, resent, "spans sent again by the heir")
			default:
				// Sent as they ended, marked every two seconds: those
				// since the last mark come again, with their ids.
				assert.LessOrEqual(t, again, before-1, "spans that arrived twice")
			}
		})
	}
}

func hasSpan(spans []otlptest.Span, name string) bool {
	for _, s := range spans {
		if s.Name == name {
			return true
		}
	}
	return false
}

// noCutOff says that the kill cut no attempt off: it came after the run
// ended.
const noCutOff = -2

// checkTrace checks that spans are one trace under caller: the run's span,
// and one span id for each step or attempt that history says ended, under
// the run's span; the attempt lost by the kill among them, unless
// cutOffTurn is noCutOff. A span id that
// comes again must be the same span, sent again (resent); it returns how
// many came again.
func checkTrace(t *testing.T, spans []otlptest.Span, history []backend.Event, caller trace.SpanContext, cutOffTurn int) (again int) {
	t.Helper()
	// What history says ended: "step/attempt" of each activity attempt,
	// "step/0" of each timer, decision and workflow tool.
	expected := map[string]string{}
	lost := ""
	for _, e := range history {
		switch {
		case e.Type == backend.EventActivityCompleted || e.Type == backend.EventActivityAttemptFailed || e.Type == backend.EventActivityFailed:
			key := fmt.Sprintf("%d/%d", e.Step, e.Attempt)
			expected[key] = e.Name
			if e.Failure != nil && e.Failure.Kind == backend.KindLost {
				lost = key
			}
		case e.Type == backend.EventTimerFired:
			expected[fmt.Sprintf("%d/0", e.Step)] = "timer"
		case e.Type == backend.EventSideEffect && (e.Name == "approval_decided" || e.Name == "workflow_tool_finished"):
			expected[fmt.Sprintf("%d/0", e.Step)] = e.Name
		}
	}
	if cutOffTurn == noCutOff {
		require.Empty(t, lost, "history has a lost attempt")
	} else {
		require.NotEmpty(t, lost, "history has no lost attempt")
	}

	traceID := caller.TraceID().String()
	var run otlptest.Span
	seen := map[string]otlptest.Span{}
	ids := map[string]otlptest.Span{}
	for _, s := range spans {
		assert.Equal(t, traceID, s.TraceID, "span %s: its trace, want the caller's", s.Name)
		if first, dup := ids[s.SpanID]; dup {
			again++
			assert.Equal(t, first.Name, s.Name, "span id %s: two spans", s.SpanID)
			assert.Equal(t, first.Attributes["cairn.step"], s.Attributes["cairn.step"], "span id %s (%s): two steps", s.SpanID, s.Name)
			assert.True(t, first.Start.Equal(s.Start) && first.End.Equal(s.End),
				"span id %s (%s) sent again with other times", s.SpanID, s.Name)
			continue
		}
		ids[s.SpanID] = s
		switch {
		case s.Name == "handle request":
		case s.Name == "invoke_agent clerk":
			assert.Empty(t, run.Name, "two run spans")
			run = s
		default:
			key := fmt.Sprintf("%d/%d", s.Attributes["cairn.step"], attrInt(s, "cairn.attempt"))
			_, dup := seen[key]
			assert.False(t, dup, "step %s reported twice: %s and %s", key, seen[key].Name, s.Name)
			seen[key] = s
		}
	}
	for key, want := range map[string]any{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "clerk",
		"gen_ai.conversation.id": clerkRun, "gen_ai.provider.name": "cairn.scripted", "cairn.run.status": "completed"} {
		assert.Equal(t, want, run.Attributes[key], "the run's span: %s", key)
	}
	for _, s := range seen {
		want := map[string]any{"gen_ai.conversation.id": clerkRun, "gen_ai.agent.name": "clerk"}
		switch {
		case strings.HasPrefix(s.Name, "chat "):
			want["gen_ai.operation.name"], want["gen_ai.provider.name"] = "chat", "cairn.scripted"
			assert.Equal(t, "client", s.Kind, "span %s: its kind", s.Name)
		case strings.HasPrefix(s.Name, "execute_tool "):
			want["gen_ai.operation.name"], want["gen_ai.tool.name"] = "execute_tool", strings.TrimPrefix(s.Name, "execute_tool ")
		}
		for key, w := range want {
			assert.Equal(t, w, s.Attributes[key], "span %s: %s", s.Name, key)
		}
	}
	assert.Equal(t, caller.SpanID().String(), run.ParentSpanID, "the run's span hangs under another than the caller's span")
	for key, name := range expected {
		s, ok := seen[key]
		if !assert.True(t, ok, "no span for step %s (%s)", key, name) {
			continue
		}
		parent := run.SpanID
		if s.Name == "timer" {
			// The clerk's timer is its workflow tool's: under the tool's span.
			parent = seen[fmt.Sprintf("%d/0", s.Attributes["cairn.step"].(int64)+1)].SpanID
		}
		assert.Equal(t, parent, s.ParentSpanID, "span %s (%s) hangs under another than its parent's span", s.Name, key)
	}
	for key, s := range seen {
		assert.Contains(t, expected, key, "span %s for step %s, which history does not record as ended", s.Name, key)
	}
	assert.Len(t, ids, len(expected)+2, "span ids: one per ended step or attempt, the run's, the caller's")

	if cutOffTurn == noCutOff {
		t.Logf("%d spans in one trace, %d of them sent again", len(spans), again)
		return again
	}
	s := seen[lost]
	assert.Equal(t, "error", s.StatusCode, "the lost attempt's span %s: its status", s.Name)
	assert.Equal(t, "attempt_lost", s.Attributes["error.type"], "the lost attempt's span %s: its error type", s.Name)
	assert.Equal(t, true, s.Attributes["cairn.replayed"], "the lost attempt's span %s: reported by the heir", s.Name)
	if cutOffTurn >= 0 {
		assert.True(t, strings.HasPrefix(s.Name, "chat"), "the lost attempt's span is %s, want a chat span", s.Name)
	} else {
		assert.Equal(t, "execute_tool refund", s.Name, "the lost attempt's span")
	}
	t.Logf("%d spans in one trace, %d of them sent again; the lost attempt: %s %s (%s)", len(spans), again, s.Name, lost, s.StatusMessage)
	return again
}

func attrInt(s otlptest.Span, key string) int64 {
	n, _ := s.Attributes[key].(int64)
	return n
}
