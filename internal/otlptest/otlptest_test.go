package otlptest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/internal/otlptest"
)

const waitTimeout = 10 * time.Second

// newTracer returns a tracer whose spans are exported to r, one request
// per span as each ends.
func newTracer(t *testing.T, r *otlptest.Receiver, opts ...otlptracehttp.Option) trace.Tracer {
	t.Helper()
	opts = append([]otlptracehttp.Option{otlptracehttp.WithEndpoint(r.Endpoint()), otlptracehttp.WithInsecure()}, opts...)
	exp, err := otlptracehttp.New(t.Context(), opts...)
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "otlptest"))),
	)
	t.Cleanup(func() {
		assert.NoError(t, tp.Shutdown(context.Background()), "TracerProvider.Shutdown")
	})
	return tp.Tracer("cairn/otlptest-test")
}

// byName indexes spans by name, failing on duplicates.
func byName(t *testing.T, spans []otlptest.Span) map[string]otlptest.Span {
	t.Helper()
	m := map[string]otlptest.Span{}
	for _, s := range spans {
		require.NotContains(t, m, s.Name, "span %q received twice", s.Name)
		m[s.Name] = s
	}
	return m
}

func TestEndpointAndURL(t *testing.T) {
	r := otlptest.NewReceiver(t)
	assert.True(t, strings.HasPrefix(r.Endpoint(), "127.0.0.1:"), "Endpoint() = %q, want 127.0.0.1:port", r.Endpoint())
	assert.Equal(t, "http://"+r.Endpoint(), r.URL())
}

func TestExportedSpansDecode(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []otlptracehttp.Option
	}{
		{"protobuf", nil},
		{"protobuf-gzip", []otlptracehttp.Option{otlptracehttp.WithCompression(otlptracehttp.GzipCompression)}},
		{"json", []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON)}},
		{"json-gzip", []otlptracehttp.Option{otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON), otlptracehttp.WithCompression(otlptracehttp.GzipCompression)}},
	} {
		t.Run(tc.name, func(t *testing.T) { testExportedSpansDecode(t, tc.opts) })
	}
}

func testExportedSpansDecode(t *testing.T, opts []otlptracehttp.Option) {
	r := otlptest.NewReceiver(t)
	tracer := newTracer(t, r, opts...)

	_, other := tracer.Start(context.Background(), "other", trace.WithSpanKind(trace.SpanKindProducer))
	other.End()
	ctx, parent := tracer.Start(context.Background(), "parent", trace.WithSpanKind(trace.SpanKindServer))
	_, child := tracer.Start(ctx, "child",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(trace.Link{SpanContext: other.SpanContext()}),
		trace.WithAttributes(
			attribute.String("s", "text"),
			attribute.Int("i", 42),
			attribute.Float64("f", 1.5),
			attribute.Bool("b", true),
			attribute.StringSlice("ss", []string{"a", "b"}),
			attribute.Int64Slice("is", []int64{1, -2}),
		))
	child.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)))
	child.SetStatus(codes.Error, "boom")
	child.End()
	parent.End()

	got := byName(t, r.WaitForSpans(t, 3, waitTimeout))
	require.Len(t, got, 3, "want other, parent, child")
	assert.Equal(t, 3, r.Requests(), "one request per span with a syncer")
	assert.Empty(t, r.Errors())

	for name, want := range map[string]struct {
		sc     trace.SpanContext
		parent string
		kind   string
		status string
	}{
		"other":  {other.SpanContext(), "", "producer", "unset"},
		"parent": {parent.SpanContext(), "", "server", "unset"},
		"child":  {child.SpanContext(), parent.SpanContext().SpanID().String(), "client", "error"},
	} {
		s := got[name]
		assert.Equal(t, want.sc.TraceID().String(), s.TraceID, "%s: TraceID", name)
		assert.Equal(t, want.sc.SpanID().String(), s.SpanID, "%s: SpanID", name)
		assert.Equal(t, want.parent, s.ParentSpanID, "%s: ParentSpanID", name)
		assert.Equal(t, want.kind, s.Kind, "%s: Kind", name)
		assert.Equal(t, want.status, s.StatusCode, "%s: StatusCode", name)
		assert.Equal(t, "cairn/otlptest-test", s.Scope, "%s: Scope", name)
		assert.Equal(t, "otlptest", s.Resource["service.name"], "%s: Resource service.name", name)
	}

	c := got["child"]
	assert.Equal(t, got["parent"].TraceID, c.TraceID, "child trace, want the parent's")
	wantAttrs := map[string]any{
		"s": "text", "i": int64(42), "f": 1.5, "b": true,
		"ss": []any{"a", "b"}, "is": []any{int64(1), int64(-2)},
	}
	assert.Equal(t, wantAttrs, c.Attributes, "child attributes")
	assert.Equal(t, "boom", c.StatusMessage, "child StatusMessage")
	wantEvents := []otlptest.SpanEvent{{Name: "retry", Attributes: map[string]any{"attempt": int64(2)}}}
	assert.Equal(t, wantEvents, c.Events, "child events")
	wantLinks := []otlptest.Link{{TraceID: got["other"].TraceID, SpanID: got["other"].SpanID}}
	assert.Equal(t, wantLinks, c.Links, "child links")
	ro := child.(sdktrace.ReadOnlySpan)
	assert.True(t, c.Start.Equal(ro.StartTime()), "child start %v, want %v", c.Start, ro.StartTime())
	assert.True(t, c.End.Equal(ro.EndTime()), "child end %v, want %v", c.End, ro.EndTime())
}

func TestSpansReturnsFreshCopies(t *testing.T) {
	r := otlptest.NewReceiver(t)
	_, s := newTracer(t, r).Start(context.Background(), "s", trace.WithAttributes(attribute.String("k", "v")))
	s.End()
	r.WaitForSpans(t, 1, waitTimeout)[0].Attributes["k"] = "changed"
	assert.Equal(t, "v", r.Spans()[0].Attributes["k"], "after modifying a returned span, attribute k")
}

// post sends body to r and returns the response status, Content-Type and body.
func post(t *testing.T, r *otlptest.Receiver, contentType, contentEncoding string, body []byte) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.URL()+"/v1/traces", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	if contentEncoding != "" {
		req.Header.Set("Content-Encoding", contentEncoding)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), data
}

func TestGzipRequestGetsProtobufResponse(t *testing.T) {
	r := otlptest.NewReceiver(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(mustMarshal(t, &coltracepb.ExportTraceServiceRequest{}))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	status, ct, body := post(t, r, "application/x-protobuf", "gzip", buf.Bytes())
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "application/x-protobuf", ct)
	assert.NoError(t, proto.Unmarshal(body, &coltracepb.ExportTraceServiceResponse{}),
		"response body is not an ExportTraceServiceResponse")
	assert.Equal(t, 1, r.Requests())
	assert.Empty(t, r.Errors())
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestBadRequestsAreRejectedAndRecorded(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, contentEncoding string
		body                               []byte
		wantStatus                         int
	}{
		{"garbage protobuf", "application/x-protobuf", "", []byte("not a protobuf"), http.StatusBadRequest},
		{"garbage json", "application/json", "", []byte("{nope"), http.StatusBadRequest},
		{"garbage gzip", "application/x-protobuf", "gzip", []byte("not gzip"), http.StatusBadRequest},
		{"short trace id", "application/json", "", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"0102030405060708"}]}]}]}`), http.StatusBadRequest},
		{"wrong content type", "text/plain", "", []byte("hello"), http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := otlptest.NewReceiver(t)
			status, _, body := post(t, r, tc.contentType, tc.contentEncoding, tc.body)
			assert.Equal(t, tc.wantStatus, status, "answer %q", body)
			assert.NotEmpty(t, bytes.TrimSpace(body), "an answer with a message")
			errs := r.Errors()
			if assert.Len(t, errs, 1) {
				assert.Contains(t, string(body), errs[0].Error(), "the error recorded matches the answer")
			}
			assert.Zero(t, r.Requests())
			assert.Empty(t, r.Spans())
		})
	}
}

func TestJSONSpanDecodes(t *testing.T) {
	r := otlptest.NewReceiver(t)
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
		"scopeSpans":[{"scope":{"name":"sc"},"spans":[{
			"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173",
			"name":"op","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
			"attributes":[{"key":"n","value":{"intValue":"7"}}],"status":{"code":1}}]}]}]}`
	status, ct, _ := post(t, r, "application/json", "", []byte(body))
	require.Equal(t, http.StatusOK, status, "errors %v", r.Errors())
	require.Equal(t, "application/json", ct)
	want := otlptest.Span{
		TraceID: "5b8efff798038103d269b633813fc60c", SpanID: "eee19b7ec3c1b174", ParentSpanID: "eee19b7ec3c1b173",
		Name: "op", Kind: "server", Start: time.Unix(1544712660, 0), End: time.Unix(1544712661, 0),
		Attributes: map[string]any{"n": int64(7)}, StatusCode: "ok",
		Resource: map[string]any{"service.name": "svc"}, Scope: "sc",
	}
	assert.Equal(t, []otlptest.Span{want}, r.Spans())
}

// fatalRecorder stands in for a test to see what WaitForSpans fails with.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestWaitForSpansTimeoutNamesSpans(t *testing.T) {
	r := otlptest.NewReceiver(t)
	_, s := newTracer(t, r).Start(context.Background(), "only-one")
	s.End()
	r.WaitForSpans(t, 1, waitTimeout)

	f := &fatalRecorder{TB: t}
	r.WaitForSpans(f, 2, 50*time.Millisecond)
	assert.Contains(t, f.msg, "only-one", "WaitForSpans names the span received")
	assert.Contains(t, f.msg, "want at least 2", "WaitForSpans names the spans wanted")
}
