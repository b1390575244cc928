package crashtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
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
func TestAgentKillTraced(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills traced worker processes with SIGKILL and waits for their leases to expire; run without -short")
	}
	want, _ := cleanClerkRun(t)
	for _, tc := range []struct {
		name, env, stopped, cutOff string
		turn                       int // the cut-off step is the model call of this turn, or -1
	}{
		{"model_1", crashtest.EnvStopInModel + "=1", crashtest.InModel + " 1", "model 1", 1},
		{"refund", crashtest.EnvStopInTool + "=refund", crashtest.Stopped, "refund", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := otlptest.NewReceiver(t)
			otlp := "OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.URL()
			exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(recv.Endpoint()), otlptracehttp.WithInsecure())
			if err != nil {
				t.Fatal(err)
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			defer tp.Shutdown(context.Background())

			w := newAgentWorld(t)
			doomed := w.worker("doomed", tc.env, otlp)
			ctx, caller := tp.Tracer("crashtest").Start(context.Background(), "handle request")
			if _, err := w.rt.Start(ctx, w.clerk, clerkRun, agent.Input{Message: crashtest.ClerkMessage}); err != nil {
				t.Fatal(err)
			}
			caller.End()
			w.approveWhenAsked()
			doomed.waitFor(tc.stopped)
			doomed.kill()
			w.worker("heir", otlp)
			w.check(w.result(), want, expect{cutOff: tc.cutOff})

			var spans []otlptest.Span
			deadline := time.Now().Add(10 * time.Second)
			for !hasSpan(spans, "invoke_agent clerk") {
				if time.Now().After(deadline) {
					t.Fatalf("no run span; received %d spans", len(spans))
				}
				time.Sleep(10 * time.Millisecond)
				spans = recv.Spans()
			}
			checkTrace(t, spans, w.history(), caller.SpanContext(), tc.turn)
			if errs := recv.Errors(); len(errs) > 0 {
				t.Errorf("the receiver refused requests: %v", errs)
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

// checkTrace checks that spans are one trace under caller: the run's span,
// and one span for each step or attempt that history says ended, each
// once, under the run's span; the attempt lost by the kill among them.
func checkTrace(t *testing.T, spans []otlptest.Span, history []durable.Event, caller trace.SpanContext, cutOffTurn int) {
	t.Helper()
	// What history says ended: "step/attempt" of each activity attempt,
	// "step/0" of each timer, decision and workflow tool.
	expected := map[string]string{}
	lost := ""
	for _, e := range history {
		switch {
		case e.Type == durable.EventActivityCompleted || e.Type == durable.EventActivityAttemptFailed || e.Type == durable.EventActivityFailed:
			key := fmt.Sprintf("%d/%d", e.Step, e.Attempt)
			expected[key] = e.Name
			if e.Failure != nil && e.Failure.Kind == durable.KindLost {
				lost = key
			}
		case e.Type == durable.EventTimerFired:
			expected[fmt.Sprintf("%d/0", e.Step)] = "timer"
		case e.Type == durable.EventSideEffect && (e.Name == "approval_decided" || e.Name == "workflow_tool_finished"):
			expected[fmt.Sprintf("%d/0", e.Step)] = e.Name
		}
	}
	if lost == "" {
		t.Fatal("history has no lost attempt")
	}

	traceID := caller.TraceID().String()
	var run otlptest.Span
	seen := map[string]otlptest.Span{}
	ids := map[string]bool{}
	for _, s := range spans {
		if s.TraceID != traceID {
			t.Errorf("span %s is in trace %s, want the caller's %s", s.Name, s.TraceID, traceID)
		}
		if ids[s.SpanID] {
			t.Errorf("span id %s twice (%s)", s.SpanID, s.Name)
		}
		ids[s.SpanID] = true
		switch {
		case s.Name == "handle request":
		case s.Name == "invoke_agent clerk":
			if run.Name != "" {
				t.Errorf("two run spans")
			}
			run = s
		default:
			key := fmt.Sprintf("%d/%d", s.Attributes["cairn.step"], attrInt(s, "cairn.attempt"))
			if other, dup := seen[key]; dup {
				t.Errorf("step %s reported twice: %s and %s", key, other.Name, s.Name)
			}
			seen[key] = s
		}
	}
	for key, want := range map[string]any{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "clerk",
		"gen_ai.conversation.id": clerkRun, "gen_ai.provider.name": "cairn.scripted", "cairn.run.status": "completed"} {
		if run.Attributes[key] != want {
			t.Errorf("the run's span: %s = %v, want %v", key, run.Attributes[key], want)
		}
	}
	for _, s := range seen {
		want := map[string]any{"gen_ai.conversation.id": clerkRun, "gen_ai.agent.name": "clerk"}
		switch {
		case strings.HasPrefix(s.Name, "chat "):
			want["gen_ai.operation.name"], want["gen_ai.provider.name"] = "chat", "cairn.scripted"
			if s.Kind != "client" {
				t.Errorf("span %s is of kind %s, want client", s.Name, s.Kind)
			}
		case strings.HasPrefix(s.Name, "execute_tool "):
			want["gen_ai.operation.name"], want["gen_ai.tool.name"] = "execute_tool", strings.TrimPrefix(s.Name, "execute_tool ")
		}
		for key, w := range want {
			if s.Attributes[key] != w {
				t.Errorf("span %s: %s = %v, want %v", s.Name, key, s.Attributes[key], w)
			}
		}
	}
	if run.ParentSpanID != caller.SpanID().String() {
		t.Errorf("the run's span hangs under %q, want the caller's span %s", run.ParentSpanID, caller.SpanID())
	}
	for key, name := range expected {
		s, ok := seen[key]
		if !ok {
			t.Errorf("no span for step %s (%s)", key, name)
			continue
		}
		if s.ParentSpanID != run.SpanID {
			t.Errorf("span %s (%s) hangs under %s, not the run's span %s", s.Name, key, s.ParentSpanID, run.SpanID)
		}
	}
	for key, s := range seen {
		if _, ok := expected[key]; !ok {
			t.Errorf("span %s for step %s, which history does not record as ended", s.Name, key)
		}
	}
	if len(spans) != len(expected)+2 {
		t.Errorf("%d spans; want %d: one per ended step or attempt, the run's, the caller's", len(spans), len(expected)+2)
	}

	s := seen[lost]
	if s.StatusCode != "error" || s.Attributes["error.type"] != "attempt_lost" || s.Attributes["cairn.replayed"] != true {
		t.Errorf("the lost attempt's span %s: status %s, attributes %v; want an error of type attempt_lost, reported by the heir",
			s.Name, s.StatusCode, s.Attributes)
	}
	if cutOffTurn >= 0 && !strings.HasPrefix(s.Name, "chat") {
		t.Errorf("the lost attempt's span is %s, want a chat span", s.Name)
	}
	if cutOffTurn < 0 && s.Name != "execute_tool refund" {
		t.Errorf("the lost attempt's span is %s, want execute_tool refund", s.Name)
	}
	t.Logf("%d spans in one trace; the lost attempt: %s %s (%s)", len(spans), s.Name, lost, s.StatusMessage)
}

func attrInt(s otlptest.Span, key string) int64 {
	n, _ := s.Attributes[key].(int64)
	return n
}
