package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/otlptest"
)

// TestTraceExported runs the example twice with OTEL_EXPORTER_OTLP_ENDPOINT
// set, each time to a receiver of its own: the first time under the
// example's service name, the second under the one OTEL_SERVICE_NAME
// gives. Each run is one trace, started under the parent's span, with the
// spans of the parent and of worker 2, which stopped cleanly; the two runs
// are two traces. Worker 1, killed with SIGKILL, batched its spans: those
// it had not exported are sent by worker 2, so every step and attempt of
// the run's history has its span id once (a span that arrives twice has
// the same id).
func TestTraceExported(t *testing.T) {
	otlptest.ClearEnv(t) // the workers inherit the test's environment
	var traces []string
	for _, service := range []string{"", "trip-desk"} {
		recv := otlptest.NewReceiver(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
		t.Setenv("OTEL_SERVICE_NAME", service)
		m := miniredis.NewMiniRedis()
		require.NoError(t, m.StartAddr("127.0.0.1:0"))
		t.Cleanup(m.Close)
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		rep, err := run(ctx, &out, config{RedisURL: "redis://" + m.Addr() + "/0", KillIn: "charge_card", Lease: time.Second,
			Model: "scripted", Stderr: testLog{t}, Timeout: 30 * time.Second})
		cancel()
		require.NoError(t, err, "run:\n%s", out.String())
		require.True(t, rep.Killed, "worker 1 was not killed")
		assert.Contains(t, out.String(), "Its trace: "+rep.TraceID, "the output does not give the run's trace")
		traces = append(traces, rep.TraceID)

		// run returns once worker 2 has stopped and the parent has shut
		// its providers down: what they export has arrived.
		require.Empty(t, recv.Errors(), "rejected requests")
		spans := recv.Spans()
		require.NotEmpty(t, spans, "no span received")
		wantService := service
		if wantService == "" {
			wantService = serviceName
		}
		ids := map[string]otlptest.Span{}
		byName := map[string][]otlptest.Span{}
		again := 0
		for _, s := range spans {
			assert.Equal(t, rep.TraceID, s.TraceID, "span %s is not in the run's trace", s.Name)
			assert.Equal(t, wantService, s.Resource["service.name"], "span %s: service.name", s.Name)
			if first, dup := ids[s.SpanID]; dup {
				again++
				assert.Equal(t, first.Name, s.Name, "span id %s: two spans", s.SpanID)
				continue
			}
			ids[s.SpanID] = s
			byName[s.Name] = append(byName[s.Name], s)
		}
		req := byName["handle request"]
		require.Len(t, req, 1, "the parent's span")

		// Every step's span hangs under the run's span, whose id derives
		// from the run, and every step and attempt that history says
		// ended has its span id.
		store, err := redis.Open("redis://" + m.Addr() + "/0")
		require.NoError(t, err)
		rrun := agent.NewRuntime(store, agent.Options{}).Run(rep.RunID)
		info, err := rrun.Describe(context.Background())
		require.NoError(t, err)
		history, err := rrun.History(context.Background())
		store.Close()
		require.NoError(t, err)
		runSpan := info.Trace.RunSpanID(rep.RunID).String()
		for _, s := range ids {
			switch s.Name {
			case "handle request":
			case "invoke_agent " + agentName:
				assert.Equal(t, runSpan, s.SpanID, "the run's span: its derived id")
				assert.Equal(t, req[0].SpanID, s.ParentSpanID, "the run's span hangs under the parent's")
			default:
				assert.Equal(t, runSpan, s.ParentSpanID, "span %s (attempt %v) hangs under the run's", s.Name, s.Attributes["cairn.attempt"])
			}
		}
		assert.Len(t, byName["invoke_agent "+agentName], 1, "spans of the run")
		ended := 0
		for _, e := range history {
			var id string
			switch e.Type {
			case backend.EventActivityCompleted, backend.EventActivityAttemptFailed, backend.EventActivityFailed:
				id = info.Trace.StepSpanID(rep.RunID, 0, e.Step, e.Attempt).String()
			case backend.EventTimerFired:
				id = info.Trace.StepSpanID(rep.RunID, 0, e.Step, 0).String()
			default:
				continue
			}
			ended++
			assert.Contains(t, ids, id, "no span for %s of step %d, attempt %d", e.Name, e.Step, e.Attempt)
		}
		t.Logf("%d spans, %d ids; %d steps and attempts ended; %d spans arrived twice", len(spans), len(ids), ended, again)

		// Worker 2 reports the attempt cut off by the kill, the one that
		// replaced it, and the steps after it.
		attempts := map[int64]otlptest.Span{}
		for _, s := range byName["execute_tool charge_card"] {
			attempt, _ := s.Attributes["cairn.attempt"].(int64)
			attempts[attempt] = s
		}
		if assert.Contains(t, attempts, int64(1), "the lost attempt of charge_card") {
			assert.Equal(t, "attempt_lost", attempts[1].Attributes["error.type"], "the lost attempt's error.type")
		}
		assert.Contains(t, attempts, int64(2), "the attempt of charge_card that replaced the lost one")
		assert.Len(t, byName["execute_tool send_confirmation"], 1, "spans of send_confirmation, after the kill")

		// Worker 2's metrics, sent at its shutdown: the steps it ran.
		var steps float64
		for _, metric := range recv.Metrics() {
			if metric.Name != "cairn.steps" {
				continue
			}
			assert.Equal(t, wantService, metric.Resource["service.name"], "cairn.steps: service.name")
			for _, p := range metric.Points {
				steps += p.Value
			}
		}
		assert.GreaterOrEqual(t, steps, 2.0, "cairn.steps: worker 2's steps (charge_card and send_confirmation at least)")
	}
	assert.NotEqual(t, traces[0], traces[1], "two runs, one trace")
}
