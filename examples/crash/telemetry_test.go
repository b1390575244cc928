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
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/otlptest"
)

// TestTraceExported runs the example twice with OTEL_EXPORTER_OTLP_ENDPOINT
// set, each time to a receiver of its own: the first time under the
// example's service name, the second under the one OTEL_SERVICE_NAME
// gives. Each run is one trace, started under the parent's span, with the
// spans of the parent and of worker 2, which stopped cleanly; the two runs
// are two traces.
//
// What it does not assert, as it does not hold yet (issue 19):
//
//   - Worker 1 is killed with SIGKILL: the spans it had not exported yet
//     (with the SDK's batching, every step it finished) are lost, so the
//     test asserts nothing about the steps before the kill. When spans
//     survive a crash, assert here that every step and attempt of the
//     run's history has exactly one span.
//   - The spans and metrics of the run's last write (the last chat, the
//     run's invoke_agent span, cairn.runs) are lost about one time in
//     five, though worker 2 stops cleanly: the parent sees the run end and
//     stops worker 2 at once, which cancels the context of the commit in
//     flight; the store applied the commit but the worker saw a canceled
//     call, so its observers were never told (durable's write skips them
//     when Commit returns an error). When a commit cut off by a stop is
//     still observed, require the run's span here.
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
		ids := map[string]string{}
		byName := map[string][]otlptest.Span{}
		for _, s := range spans {
			assert.Equal(t, rep.TraceID, s.TraceID, "span %s is not in the run's trace", s.Name)
			assert.Equal(t, wantService, s.Resource["service.name"], "span %s: service.name", s.Name)
			assert.NotContains(t, ids, s.SpanID, "span %s has the id of span %s", s.Name, ids[s.SpanID])
			ids[s.SpanID] = s.Name
			byName[s.Name] = append(byName[s.Name], s)
		}
		req := byName["handle request"]
		require.Len(t, req, 1, "the parent's span")

		// Every step's span hangs under the run's span, whose id derives
		// from the run. The run's span itself, and the spans of the
		// run's last write, may be missing: see the comment above.
		store, err := redis.Open("redis://" + m.Addr() + "/0")
		require.NoError(t, err)
		info, err := agent.NewRuntime(store, agent.Options{}).Run(rep.RunID).Describe(context.Background())
		store.Close()
		require.NoError(t, err)
		runSpan := info.Trace.RunSpanID(rep.RunID).String()
		for _, s := range spans {
			switch s.Name {
			case "handle request":
			case "invoke_agent " + agentName:
				assert.Equal(t, runSpan, s.SpanID, "the run's span: its derived id")
				assert.Equal(t, req[0].SpanID, s.ParentSpanID, "the run's span hangs under the parent's")
			default:
				assert.Equal(t, runSpan, s.ParentSpanID, "span %s (attempt %v) hangs under the run's", s.Name, s.Attributes["cairn.attempt"])
			}
		}
		assert.LessOrEqual(t, len(byName["invoke_agent "+agentName]), 1, "spans of the run")

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
