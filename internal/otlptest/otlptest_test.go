package otlptest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

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
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "otlptest"))),
	)
	t.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Errorf("TracerProvider.Shutdown: %v", err)
		}
	})
	return tp.Tracer("cairn/otlptest-test")
}

// byName indexes spans by name, failing on duplicates.
func byName(t *testing.T, spans []otlptest.Span) map[string]otlptest.Span {
	t.Helper()
	m := map[string]otlptest.Span{}
	for _, s := range spans {
		if _, dup := m[s.Name]; dup {
			t.Fatalf("span %q received twice", s.Name)
		}
		m[s.Name] = s
	}
	return m
}

func TestEndpointAndURL(t *testing.T) {
	r := otlptest.NewReceiver(t)
	if !strings.HasPrefix(r.Endpoint(), "127.0.0.1:") {
		t.Errorf("Endpoint() = %q, want 127.0.0.1:port", r.Endpoint())
	}
	if r.URL() != "http://"+r.Endpoint() {
		t.Errorf("URL() = %q, want http://%s", r.URL(), r.Endpoint())
	}
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
	if len(got) != 3 {
		t.Fatalf("got spans %v, want other, parent, child", got)
	}
	if n := r.Requests(); n != 3 {
		t.Errorf("Requests() = %d, want 3 (one per span with a syncer)", n)
	}
	if errs := r.Errors(); len(errs) != 0 {
		t.Errorf("Errors() = %v, want none", errs)
	}

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
		if s.TraceID != want.sc.TraceID().String() || s.SpanID != want.sc.SpanID().String() {
			t.Errorf("%s: ids %s/%s, want %s/%s", name, s.TraceID, s.SpanID, want.sc.TraceID(), want.sc.SpanID())
		}
		if s.ParentSpanID != want.parent {
			t.Errorf("%s: ParentSpanID %q, want %q", name, s.ParentSpanID, want.parent)
		}
		if s.Kind != want.kind || s.StatusCode != want.status {
			t.Errorf("%s: Kind %q StatusCode %q, want %q %q", name, s.Kind, s.StatusCode, want.kind, want.status)
		}
		if s.Scope != "cairn/otlptest-test" || s.Resource["service.name"] != "otlptest" {
			t.Errorf("%s: Scope %q Resource %v, want cairn/otlptest-test and service.name=otlptest", name, s.Scope, s.Resource)
		}
	}

	c := got["child"]
	if c.TraceID != got["parent"].TraceID {
		t.Errorf("child trace %s, want the parent's %s", c.TraceID, got["parent"].TraceID)
	}
	wantAttrs := map[string]any{
		"s": "text", "i": int64(42), "f": 1.5, "b": true,
		"ss": []any{"a", "b"}, "is": []any{int64(1), int64(-2)},
	}
	if !reflect.DeepEqual(c.Attributes, wantAttrs) {
		t.Errorf("child attributes %#v, want %#v", c.Attributes, wantAttrs)
	}
	if c.StatusMessage != "boom" {
		t.Errorf("child StatusMessage %q, want boom", c.StatusMessage)
	}
	wantEvents := []otlptest.SpanEvent{{Name: "retry", Attributes: map[string]any{"attempt": int64(2)}}}
	if !reflect.DeepEqual(c.Events, wantEvents) {
		t.Errorf("child events %#v, want %#v", c.Events, wantEvents)
	}
	wantLinks := []otlptest.Link{{TraceID: got["other"].TraceID, SpanID: got["other"].SpanID}}
	if !reflect.DeepEqual(c.Links, wantLinks) {
		t.Errorf("child links %#v, want %#v", c.Links, wantLinks)
	}
	ro := child.(sdktrace.ReadOnlySpan)
	if !c.Start.Equal(ro.StartTime()) || !c.End.Equal(ro.EndTime()) {
		t.Errorf("child times %v..%v, want %v..%v", c.Start, c.End, ro.StartTime(), ro.EndTime())
	}
}

func TestSpansReturnsFreshCopies(t *testing.T) {
	r := otlptest.NewReceiver(t)
	_, s := newTracer(t, r).Start(context.Background(), "s", trace.WithAttributes(attribute.String("k", "v")))
	s.End()
	r.WaitForSpans(t, 1, waitTimeout)[0].Attributes["k"] = "changed"
	if got := r.Spans()[0].Attributes["k"]; got != "v" {
		t.Errorf("after modifying a returned span, attribute k = %v, want v", got)
	}
}

// post sends body to r and returns the response status, Content-Type and body.
func post(t *testing.T, r *otlptest.Receiver, contentType, contentEncoding string, body []byte) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.URL()+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if contentEncoding != "" {
		req.Header.Set("Content-Encoding", contentEncoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), data
}

func TestGzipRequestGetsProtobufResponse(t *testing.T) {
	r := otlptest.NewReceiver(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(mustMarshal(t, &coltracepb.ExportTraceServiceRequest{})); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	status, ct, body := post(t, r, "application/x-protobuf", "gzip", buf.Bytes())
	if status != http.StatusOK || ct != "application/x-protobuf" {
		t.Fatalf("answer %d %q, want 200 application/x-protobuf", status, ct)
	}
	if err := proto.Unmarshal(body, &coltracepb.ExportTraceServiceResponse{}); err != nil {
		t.Errorf("response body is not an ExportTraceServiceResponse: %v", err)
	}
	if r.Requests() != 1 || len(r.Errors()) != 0 {
		t.Errorf("Requests() = %d, Errors() = %v; want 1 and none", r.Requests(), r.Errors())
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
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
			if status != tc.wantStatus || len(bytes.TrimSpace(body)) == 0 {
				t.Errorf("answer %d %q, want %d with a message", status, body, tc.wantStatus)
			}
			errs := r.Errors()
			if len(errs) != 1 || !strings.Contains(string(body), errs[0].Error()) {
				t.Errorf("Errors() = %v, want one error matching the answer %q", errs, body)
			}
			if r.Requests() != 0 || len(r.Spans()) != 0 {
				t.Errorf("Requests() = %d, Spans() = %v; want none", r.Requests(), r.Spans())
			}
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
	if status, ct, _ := post(t, r, "application/json", "", []byte(body)); status != http.StatusOK || ct != "application/json" {
		t.Fatalf("answer %d %q, want 200 application/json; errors %v", status, ct, r.Errors())
	}
	want := otlptest.Span{
		TraceID: "5b8efff798038103d269b633813fc60c", SpanID: "eee19b7ec3c1b174", ParentSpanID: "eee19b7ec3c1b173",
		Name: "op", Kind: "server", Start: time.Unix(1544712660, 0), End: time.Unix(1544712661, 0),
		Attributes: map[string]any{"n": int64(7)}, StatusCode: "ok",
		Resource: map[string]any{"service.name": "svc"}, Scope: "sc",
	}
	if got := r.Spans(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("Spans() = %#v, want [%#v]", got, want)
	}
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
	if !strings.Contains(f.msg, "only-one") || !strings.Contains(f.msg, "want at least 2") {
		t.Errorf("WaitForSpans failed with %q, want it to name span only-one and the 2 wanted", f.msg)
	}
}
