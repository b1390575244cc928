package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/otlptest"
)

// clearOTelEnv unsets, for the test, the OTEL_* variables the example's
// set-up reads that the machine might have set. The workers inherit the
// test's environment, so they see the same.
func clearOTelEnv(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER"} {
		t.Setenv(v, "")
	}
}

// TestTraceExported runs the example twice with OTEL_EXPORTER_OTLP_ENDPOINT
// set, each time to a receiver of its own: the first time under the
// example's service name, the second under the one OTEL_SERVICE_NAME
// gives. Each run is one trace, started under the parent's span, with the
// spans of the parent and of worker 2, which stopped cleanly; the two runs
// are two traces.
//
// Worker 1 is killed with SIGKILL: the spans it had not exported yet (with
// the SDK's batching, every step it finished) are lost, so the test asserts
// nothing about the steps before the kill. When spans survive a crash (see
// issue 19), assert here that every step and attempt of the run's history
// has exactly one span.
func TestTraceExported(t *testing.T) {
	clearOTelEnv(t)
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
		req, agentRun := byName["handle request"], byName["invoke_agent "+agentName]
		require.Len(t, req, 1, "the parent's span")
		require.Len(t, agentRun, 1, "the run's span")
		assert.Equal(t, req[0].SpanID, agentRun[0].ParentSpanID, "the run's span hangs under the parent's")

		// Worker 2 reports the attempt cut off by the kill, and the one
		// that replaced it, and the steps after it.
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
		for _, s := range byName["execute_tool charge_card"] {
			assert.Equal(t, agentRun[0].SpanID, s.ParentSpanID, "charge_card attempt %v hangs under the run", s.Attributes["cairn.attempt"])
		}

		// Worker 2's metrics, sent at its shutdown.
		completed := false
		for _, m := range recv.Metrics() {
			if m.Name != "cairn.runs" {
				continue
			}
			assert.Equal(t, wantService, m.Resource["service.name"], "cairn.runs: service.name")
			for _, p := range m.Points {
				completed = completed || p.Attributes["cairn.run.status"] == "completed"
			}
		}
		assert.True(t, completed, "no cairn.runs point of a completed run received")
	}
	assert.NotEqual(t, traces[0], traces[1], "two runs, one trace")
}
