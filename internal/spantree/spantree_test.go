package spantree

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/internal/otlptest"
)

// sc returns the span context of span id in trace tr.
func sc(tr, id byte) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{tr}, SpanID: trace.SpanID{7: id}, TraceFlags: trace.FlagsSampled})
}

func TestWrite(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	step := func(agentName string, step, attempt int, replayed bool) []attribute.KeyValue {
		kvs := []attribute.KeyValue{attribute.String("gen_ai.agent.name", agentName),
			attribute.String("cairn.run.id", "refund-1"), attribute.Int("cairn.step", step),
			attribute.Bool("cairn.replayed", replayed)}
		if attempt > 0 {
			kvs = append(kvs, attribute.Int("cairn.attempt", attempt))
		}
		return kvs
	}
	tokens := func(in, out int) []attribute.KeyValue {
		return []attribute.KeyValue{attribute.Int("gen_ai.usage.input_tokens", in),
			attribute.Int("gen_ai.usage.output_tokens", out)}
	}
	chat := attribute.String("gen_ai.operation.name", "chat")
	stubs := tracetest.SpanStubs{
		{
			Name: "chat gpt-4o-mini", SpanContext: sc(1, 3), Parent: sc(1, 2), SpanKind: trace.SpanKindClient,
			StartTime: at(2), EndTime: at(1204),
			Attributes: append(append(step("support", 1, 1, false), chat), tokens(120, 18)...),
		},
		{
			Name: "handle request", SpanContext: sc(1, 1), StartTime: at(0), EndTime: at(1),
		},
		{
			Name: "invoke_agent support", SpanContext: sc(1, 2), Parent: sc(1, 1), StartTime: at(1), EndTime: at(2513),
			Attributes: append([]attribute.KeyValue{attribute.String("gen_ai.operation.name", "invoke_agent"),
				attribute.String("cairn.run.status", "completed"), attribute.Bool("cairn.replayed", false)},
				tokens(412, 61)...),
		},
		{
			Name: "execute_tool lookup_order", SpanContext: sc(1, 4), Parent: sc(1, 2), StartTime: at(1210), EndTime: at(1212),
			Attributes: step("support", 2, 1, false),
		},
		{
			Name: "chat gpt-4o-mini", SpanContext: sc(1, 5), Parent: sc(1, 2), SpanKind: trace.SpanKindClient,
			StartTime: at(1215), EndTime: at(1300),
			Attributes: append(step("support", 3, 1, false), chat, attribute.Bool("cairn.attempt.retried", true),
				attribute.String("error.type", "rate_limit")),
			Status: sdktrace.Status{Code: codes.Error,
				Description: "429 Too Many Requests:\nplease slow down, you have sent far too many requests this minute"},
		},
		{
			Name: "chat gpt-4o-mini", SpanContext: sc(1, 6), Parent: sc(1, 2), SpanKind: trace.SpanKindClient,
			StartTime: at(1400), EndTime: at(2000),
			Attributes: append(append(step("support", 3, 2, false), chat), tokens(292, 43)...),
		},
		{
			Name: "await_approval refund", SpanContext: sc(1, 7), Parent: sc(1, 2), StartTime: at(2001), EndTime: at(2400),
			Attributes: append(step("support", 4, 0, true), attribute.Bool("cairn.approval.approved", true),
				attribute.String("cairn.approval.by", "alice@example.com")),
		},
		{
			// Its parent is in another process: a root of its own.
			Name: "execute_tool " + strings.Repeat("very_long_tool_name_", 5), SpanContext: sc(2, 1), Parent: sc(2, 99),
			StartTime: at(-500), EndTime: at(-250),
			Attributes: append(step("support", 5, 1, false), attribute.String("error.type", "fatal")),
			Status:     sdktrace.Status{Code: codes.Error, Description: "boom"},
		},
	}
	var out bytes.Buffer
	require.NoError(t, Write(&out, stubs.Snapshots()))
	want := ` +0.000s   0.250s  execute_tool very_long_tool_name_very_long_tool_nam… [step 5, attempt 1, error fatal: boom]
 +0.000s   0.001s  handle request
 +0.001s   2.512s    invoke_agent support [completed, tokens 412 in/61 out]
 +0.002s   1.202s      chat gpt-4o-mini [step 1, tokens 120 in/18 out]
 +1.210s   0.002s      execute_tool lookup_order [step 2]
 +1.215s   0.085s      chat gpt-4o-mini [step 3, attempt 1, retried, error rate_limit: 429 Too Many Requests…]
 +1.400s   0.600s      chat gpt-4o-mini [step 3, attempt 2, tokens 292 in/43 out]
 +2.001s   0.399s      await_approval refund [step 4, approved by alice@example.com, replayed]
`
	got := out.String()
	assert.Equal(t, want, got, "Write")
	reversed := stubs.Snapshots()
	slices.Reverse(reversed)
	out.Reset()
	assert.NoError(t, Write(&out, reversed), "Write of the spans in reverse order")
	assert.Equal(t, want, out.String(), "Write of the spans in reverse order")
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		assert.LessOrEqual(t, utf8.RuneCountInString(l), maxLine, "runes in line %q", l)
	}
}

// clearEnv unsets, for the test, the OTEL_* variables Setup reads.
func clearEnv(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER"} {
		t.Setenv(v, "")
	}
}

func TestSetupRecords(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	tr, err := Setup(ctx, "spantree-test")
	require.NoError(t, err)
	ctx, parent := tr.Provider.Tracer("test").Start(ctx, "parent")
	_, child := tr.Provider.Tracer("test").Start(ctx, "child")
	child.End()
	parent.End()
	require.NoError(t, tr.Shutdown(context.Background()))
	spans := tr.Recorder.Spans()
	require.Len(t, spans, 2, "recorded spans, want child and parent")
	require.Equal(t, "child", spans[0].Name())
	require.Equal(t, "parent", spans[1].Name())
	assert.Equal(t, spans[1].SpanContext().SpanID(), spans[0].Parent().SpanID(), "child's parent")
	v, ok := spans[1].Resource().Set().Value("service.name")
	assert.True(t, ok, "service.name is set")
	assert.Equal(t, "spantree-test", v.AsString(), "service.name")
	var out bytes.Buffer
	require.NoError(t, Write(&out, spans))
	lines := strings.Split(out.String(), "\n")
	require.Len(t, lines, 3, "Write wrote\n%s", out.String())
	assert.True(t, strings.HasSuffix(lines[0], "  parent"), "Write wrote\n%s", out.String())
	assert.True(t, strings.HasSuffix(lines[1], "    child"), "Write wrote\n%s", out.String())
}

func TestSetupExportsOverOTLP(t *testing.T) {
	clearEnv(t)
	recv := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
	tr, err := Setup(context.Background(), "spantree-test")
	require.NoError(t, err)
	_, span := tr.Provider.Tracer("test").Start(context.Background(), "exported")
	span.End()
	assert.Len(t, tr.Recorder.Spans(), 1, "recorded spans")
	require.NoError(t, tr.Shutdown(context.Background()))
	require.NotZero(t, recv.Requests(), "nothing was exported to %s (rejected: %v)", recv.URL(), recv.Errors())
	spans := recv.WaitForSpans(t, 1, 5*time.Second)
	assert.Equal(t, "exported", spans[0].Name)
	assert.Equal(t, "spantree-test", spans[0].Resource["service.name"])
}

func TestRecorderWait(t *testing.T) {
	var rec Recorder
	named := func(name string) func(sdktrace.ReadOnlySpan) bool {
		return func(s sdktrace.ReadOnlySpan) bool { return s.Name() == name }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := rec.Wait(ctx, named("b"))
	require.ErrorIs(t, err, context.DeadlineExceeded, "Wait with nothing recorded")
	go func() {
		for _, name := range []string{"a", "b"} {
			time.Sleep(5 * time.Millisecond)
			_ = rec.ExportSpans(context.Background(), tracetest.SpanStubs{{Name: name}}.Snapshots())
		}
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := rec.Wait(ctx, named("b"))
	require.NoError(t, err, "Wait")
	assert.Equal(t, "b", s.Name(), "Wait")
	s, err = rec.Wait(ctx, named("a"))
	require.NoError(t, err, "Wait for a span recorded already")
	assert.Equal(t, "a", s.Name(), "Wait for a span recorded already")
}

func TestRunEnded(t *testing.T) {
	invoke := attribute.String("gen_ai.operation.name", "invoke_agent")
	for _, c := range []struct {
		attrs []attribute.KeyValue
		want  bool
	}{
		{[]attribute.KeyValue{invoke, attribute.String("cairn.run.id", "r1")}, true},
		{[]attribute.KeyValue{invoke, attribute.String("cairn.run.id", "r2")}, false},
		{[]attribute.KeyValue{attribute.String("gen_ai.operation.name", "chat"), attribute.String("cairn.run.id", "r1")}, false},
		{nil, false},
	} {
		s := tracetest.SpanStub{Name: "x", Attributes: c.attrs}.Snapshot()
		assert.Equal(t, c.want, RunEnded("r1")(s), "RunEnded(r1) of a span with %v", c.attrs)
	}
}
