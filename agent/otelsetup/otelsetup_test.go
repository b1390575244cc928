package otelsetup_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/agent/otelsetup"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/internal/otlptest"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// clearEnv unsets, for the test, every variable FromEnv reads that the
// machine running the tests might have set.
func clearEnv(t *testing.T) {
	for _, v := range []string{
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
		"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
		"OTEL_EXPORTER_OTLP_INSECURE",
	} {
		t.Setenv(v, "")
	}
	for _, signal := range []string{"TRACES", "METRICS", "LOGS"} {
		for _, what := range []string{"ENDPOINT", "PROTOCOL", "HEADERS", "INSECURE"} {
			t.Setenv("OTEL_EXPORTER_OTLP_"+signal+"_"+what, "")
		}
	}
}

// runAgent runs one agent run, a model call, a tool call that logs, and a
// final answer, with a worker that has stopped by the time it returns, so
// that everything the run emits has been handed to p. It returns the
// run's trace id.
func runAgent(t *testing.T, p *otelsetup.Providers) string {
	t.Helper()
	log := slog.New(p.LogHandler())
	type lookupArgs struct {
		Order string `json:"order"`
	}
	lookup := tools.MustNew("lookup_order", "Find an order by its number.",
		func(ctx context.Context, in lookupArgs) (string, error) {
			log.InfoContext(ctx, "looking up order", "order", in.Order)
			return "order " + in.Order + " shipped on Monday", nil
		})
	set, err := tools.NewSet(lookup)
	require.NoError(t, err)
	support := &agent.Agent{
		Name: "support",
		Model: scripted.New(
			providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
				{Name: "lookup_order", Arguments: `{"order":"A-17"}`}}}, Usage: providers.Usage{InputTokens: 20, OutputTokens: 5}},
			providers.Response{Message: providers.Message{Content: "It shipped on Monday."}, Usage: providers.Usage{InputTokens: 30, OutputTokens: 6}},
		),
		Tools: set,
	}
	rt := agent.NewRuntime(inmem.New(), agent.Options{TracerProvider: p.TracerProvider, MeterProvider: p.MeterProvider, Logger: log})
	require.NoError(t, rt.Register(support))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.NewWorker(durable.WorkerOptions{Logger: log}).Run(wctx) }()
	run, err := rt.Start(ctx, support, "ticket-1", agent.Input{Message: "Where is my order A-17?"})
	require.NoError(t, err)
	res, err := run.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, "It shipped on Monday.", res.Text)
	info, err := rt.Client().Describe(ctx, "ticket-1")
	require.NoError(t, err)
	stop()
	<-done
	return info.Trace.TraceID.String()
}

// metricNamed returns the metric called name, merged over the exports
// that carried it.
func metricNamed(t *testing.T, got []otlptest.Metric, name string) otlptest.Metric {
	t.Helper()
	var m otlptest.Metric
	for _, g := range got {
		if g.Name == name {
			points := append(m.Points, g.Points...)
			m = g
			m.Points = points
		}
	}
	require.NotEmpty(t, m.Name, "metric %s not received", name)
	return m
}

// pointWith returns the first point of m whose attributes include attrs.
func pointWith(t *testing.T, m otlptest.Metric, attrs map[string]any) otlptest.Point {
	t.Helper()
	for _, p := range m.Points {
		match := true
		for k, v := range attrs {
			match = match && p.Attributes[k] == v
		}
		if match {
			return p
		}
	}
	t.Fatalf("%s: no point with attributes %v among %v", m.Name, attrs, m.Points)
	return otlptest.Point{}
}

// TestOTLPHTTP: with OTEL_EXPORTER_OTLP_ENDPOINT set, a run's spans,
// metrics and logs reach the receiver over OTLP/HTTP, with the headers of
// OTEL_EXPORTER_OTLP_HEADERS, the resource of OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES, and the names, units and attributes of
// cairn's metrics.
func TestOTLPHTTP(t *testing.T) {
	clearEnv(t)
	recv := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cret")
	t.Setenv("OTEL_SERVICE_NAME", "support-desk")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")

	p, err := otelsetup.FromEnv(context.Background(), otelsetup.Options{ServiceName: "the-default"})
	require.NoError(t, err)
	traceID := runAgent(t, p)
	require.NoError(t, p.Shutdown(context.Background()))
	require.Empty(t, recv.Errors(), "rejected requests")

	headers := recv.Headers()
	require.NotEmpty(t, headers)
	for i, h := range headers {
		assert.Equal(t, "s3cret", h.Get("X-Api-Key"), "request %d: header from OTEL_EXPORTER_OTLP_HEADERS", i)
	}

	spans := recv.Spans()
	require.NotEmpty(t, spans, "no spans received")
	for _, s := range spans {
		assert.Equal(t, "support-desk", s.Resource["service.name"], "span %s: service.name, want OTEL_SERVICE_NAME's", s.Name)
		assert.Equal(t, "test", s.Resource["deployment.environment.name"], "span %s: resource attribute", s.Name)
		assert.Equal(t, traceID, s.TraceID, "span %s: trace", s.Name)
	}

	metrics := recv.Metrics()
	steps := metricNamed(t, metrics, "cairn.steps")
	assert.Equal(t, "{step}", steps.Unit)
	assert.Equal(t, "sum", steps.Kind)
	assert.Equal(t, "support-desk", steps.Resource["service.name"])
	assert.Equal(t, "github.com/cairn-dev/cairn/agent", steps.Scope)
	assert.Equal(t, 2.0, pointWith(t, steps, map[string]any{"cairn.step.kind": "chat", "cairn.step.outcome": "completed"}).Value)
	assert.Equal(t, 1.0, pointWith(t, steps, map[string]any{"cairn.step.kind": "tool", "cairn.step.outcome": "completed"}).Value)

	runs := metricNamed(t, metrics, "cairn.runs")
	assert.Equal(t, "{run}", runs.Unit)
	assert.Equal(t, 1.0, pointWith(t, runs, map[string]any{"cairn.run.status": "completed", "gen_ai.agent.name": "support"}).Value)

	tokens := metricNamed(t, metrics, "gen_ai.client.token.usage")
	assert.Equal(t, "{token}", tokens.Unit)
	assert.Equal(t, "histogram", tokens.Kind)
	in := pointWith(t, tokens, map[string]any{"gen_ai.token.type": "input", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "cairn.scripted", "gen_ai.request.model": "scripted"})
	assert.Equal(t, uint64(2), in.Count)
	assert.Equal(t, 50.0, in.Value)
	assert.Equal(t, 11.0, pointWith(t, tokens, map[string]any{"gen_ai.token.type": "output"}).Value)

	duration := metricNamed(t, metrics, "gen_ai.client.operation.duration")
	assert.Equal(t, "s", duration.Unit)
	assert.Equal(t, uint64(2), pointWith(t, duration, map[string]any{"gen_ai.operation.name": "chat"}).Count)

	var toolLog *otlptest.LogRecord
	for _, l := range recv.Logs() {
		if l.Body == "looking up order" {
			toolLog = &l
		}
	}
	require.NotNil(t, toolLog, "the tool's log record was not received: %v", recv.Logs())
	assert.Equal(t, traceID, toolLog.TraceID, "the record's trace: the run's")
	assert.NotEmpty(t, toolLog.SpanID, "the record's span: the tool call's attempt")
	assert.Equal(t, "ticket-1", toolLog.Attributes["run_id"])
	assert.Equal(t, "A-17", toolLog.Attributes["order"])
	assert.Equal(t, "INFO", toolLog.SeverityText)
	assert.Equal(t, "support-desk", toolLog.Resource["service.name"])
	assert.Equal(t, otelsetup.Instrumentation, toolLog.Scope)
}

// TestOTLPGRPC: with OTEL_EXPORTER_OTLP_PROTOCOL=grpc the three signals
// go over gRPC, with the headers as metadata.
func TestOTLPGRPC(t *testing.T) {
	clearEnv(t)
	recv := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.ServeGRPC(t))
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cret")

	p, err := otelsetup.FromEnv(context.Background(), otelsetup.Options{ServiceName: "support-grpc"})
	require.NoError(t, err)
	traceID := runAgent(t, p)
	require.NoError(t, p.Shutdown(context.Background()))
	require.Empty(t, recv.Errors(), "rejected requests")

	require.Len(t, recv.Headers(), recv.Requests())
	require.GreaterOrEqual(t, recv.Requests(), 3, "one request a signal at least")
	for i, h := range recv.Headers() {
		assert.Equal(t, "s3cret", h.Get("X-Api-Key"), "request %d: metadata from OTEL_EXPORTER_OTLP_HEADERS", i)
		assert.Contains(t, h.Get("Content-Type"), "application/grpc", "request %d: over gRPC", i)
	}
	spans := recv.Spans()
	require.NotEmpty(t, spans, "no spans received")
	assert.Equal(t, traceID, spans[0].TraceID)
	assert.Equal(t, "support-grpc", spans[0].Resource["service.name"])
	steps := metricNamed(t, recv.Metrics(), "cairn.steps")
	assert.Equal(t, 1.0, pointWith(t, steps, map[string]any{"cairn.step.kind": "tool"}).Value)
	var found bool
	for _, l := range recv.Logs() {
		if l.Body == "looking up order" {
			found = true
			assert.Equal(t, traceID, l.TraceID)
			assert.Equal(t, "ticket-1", l.Attributes["run_id"])
		}
	}
	assert.True(t, found, "the tool's log record was not received: %v", recv.Logs())
}

// TestWorkflowLogs: what workflow code logs through durable.Logger reaches
// the logs endpoint with its run's id, trace and span.
func TestWorkflowLogs(t *testing.T) {
	clearEnv(t)
	recv := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
	p, err := otelsetup.FromEnv(context.Background(), otelsetup.Options{ServiceName: "chatty"})
	require.NoError(t, err)

	wf := durable.NewWorkflow("chatty", func(ctx durable.Context, _ struct{}) (string, error) {
		durable.Logger(ctx).Info("hello from the workflow")
		return "ok", nil
	})
	store := inmem.New()
	client := durable.NewClient(store, durable.ClientOptions{})
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: slog.New(p.LogHandler())})
	w.Register(wf)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	run, err := wf.Start(ctx, client, "chatty-1", struct{}{})
	require.NoError(t, err)
	_, err = run.Result(ctx)
	require.NoError(t, err)
	info, err := client.Describe(ctx, "chatty-1")
	require.NoError(t, err)
	stop()
	<-done
	require.NoError(t, p.Shutdown(context.Background()))

	var got *otlptest.LogRecord
	for _, l := range recv.Logs() {
		if l.Body == "hello from the workflow" {
			got = &l
		}
	}
	require.NotNil(t, got, "the workflow's log record was not received: %v", recv.Logs())
	assert.Equal(t, "chatty-1", got.Attributes["run_id"])
	assert.Equal(t, info.Trace.TraceID.String(), got.TraceID)
	assert.Equal(t, info.Trace.RunSpanID("chatty-1").String(), got.SpanID, "span: the run's")
	assert.Equal(t, "chatty", got.Resource["service.name"], "service.name: Options.ServiceName, OTEL_SERVICE_NAME being unset")
}

// TestSamplerAlwaysOff: OTEL_TRACES_SAMPLER=always_off keeps every span
// in the process; metrics are exported all the same.
func TestSamplerAlwaysOff(t *testing.T) {
	clearEnv(t)
	recv := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	p, err := otelsetup.FromEnv(context.Background(), otelsetup.Options{})
	require.NoError(t, err)

	_, span := p.TracerProvider.Tracer("test").Start(context.Background(), "request")
	assert.False(t, span.SpanContext().IsSampled(), "a root span under always_off")
	span.End()
	runAgent(t, p)
	require.NoError(t, p.Shutdown(context.Background()))

	assert.Empty(t, recv.Spans(), "spans exported under always_off")
	steps := metricNamed(t, recv.Metrics(), "cairn.steps")
	assert.Contains(t, steps.Resource["service.name"], "unknown_service:", "service.name with neither option nor variable")
}

// TestExportersOff: OTEL_*_EXPORTER=none exports nothing, even with an
// endpoint set; the providers still work.
func TestExportersOff(t *testing.T) {
	clearEnv(t)
	recv := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
	for _, v := range []string{"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"} {
		t.Setenv(v, "none")
	}
	p, err := otelsetup.FromEnv(context.Background(), otelsetup.Options{})
	require.NoError(t, err)
	runAgent(t, p)
	require.NoError(t, p.Shutdown(context.Background()))
	assert.Zero(t, recv.Requests(), "requests received")
}

// TestTracesOnly: with only OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set (a
// backend that takes traces only, as Jaeger), only spans are sent.
func TestTracesOnly(t *testing.T) {
	clearEnv(t)
	recv := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", recv.URL()+"/v1/traces")
	p, err := otelsetup.FromEnv(context.Background(), otelsetup.Options{})
	require.NoError(t, err)
	runAgent(t, p)
	require.NoError(t, p.Shutdown(context.Background()))
	require.Empty(t, recv.Errors(), "rejected requests")
	assert.NotEmpty(t, recv.Spans(), "spans")
	assert.Empty(t, recv.Metrics(), "metrics")
	assert.Empty(t, recv.Logs(), "logs")
}

// TestBadEnv: a variable FromEnv cannot honour is an error, not a
// silent default.
func TestBadEnv(t *testing.T) {
	for v, bad := range map[string]string{
		"OTEL_TRACES_EXPORTER":        "carrier-pigeon",
		"OTEL_METRICS_EXPORTER":       "carrier-pigeon",
		"OTEL_LOGS_EXPORTER":          "carrier-pigeon",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/morse",
	} {
		t.Run(v, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // never reached: FromEnv fails first
			t.Setenv(v, bad)
			_, err := otelsetup.FromEnv(context.Background(), otelsetup.Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "otelsetup:")
		})
	}
}
