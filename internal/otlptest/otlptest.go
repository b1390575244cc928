// Package otlptest is for tests only: it runs a real OTLP/HTTP receiver
// of traces, metrics and logs on a loopback port, so that a test can
// export to it (in-process, or from a child process through
// OTEL_EXPORTER_OTLP_ENDPOINT) and assert on what arrived.
//
// The receiver accepts POST /v1/traces, /v1/metrics and /v1/logs with a
// protobuf or JSON export request body, optionally gzip-compressed, and
// decodes what they carry into plain Go values (Span, Metric, LogRecord).
package otlptest

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collogpb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// maxBody bounds a request body as sent (before decompression).
const maxBody = 64 << 20

// Span is one received span, decoded from OTLP into plain values.
type Span struct {
	TraceID, SpanID string // lowercase hex
	ParentSpanID    string // lowercase hex; "" for a root span
	Name            string
	Kind            string // "internal", "server", "client", "producer", "consumer" or "unspecified"
	Start, End      time.Time
	// Attributes maps each key to a string, int64, float64, bool, []byte,
	// []any (an array of such values) or map[string]any (a key/value list).
	Attributes    map[string]any
	StatusCode    string // "unset", "ok" or "error"
	StatusMessage string
	Events        []SpanEvent
	Links         []Link
	Resource      map[string]any // resource attributes, typed as Attributes
	Scope         string         // instrumentation scope name
}

// SpanEvent is an event recorded on a Span.
type SpanEvent struct {
	Name       string
	Attributes map[string]any
}

// Link is a link from a Span to another span.
type Link struct {
	TraceID, SpanID string // lowercase hex
}

// Receiver is an OTLP/HTTP receiver started by NewReceiver. Its
// methods are safe for concurrent use, also while exports are arriving.
type Receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	spans    []received
	metrics  []receivedMetric
	logs     []receivedLog
	headers  []http.Header
	errs     []error
	requests int
}

// received is a stored span with what it needs from its enclosing
// messages. Stored messages are never modified.
type received struct {
	span     *tracepb.Span
	resource *resourcepb.Resource
	scope    string
}

// NewReceiver starts a receiver listening on 127.0.0.1 on a free port. It
// is closed when the test and its subtests have finished.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlptest: listening on loopback: %v", err)
	}
	r := &Receiver{}
	r.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(r.serveHTTP)}}
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

// Endpoint returns the receiver's "host:port", for
// otlptracehttp.WithEndpoint together with otlptracehttp.WithInsecure.
func (r *Receiver) Endpoint() string { return r.srv.Listener.Addr().String() }

// URL returns "http://host:port", usable as OTEL_EXPORTER_OTLP_ENDPOINT
// (the exporter appends /v1/traces).
func (r *Receiver) URL() string { return r.srv.URL }

// Spans returns all spans received so far, in arrival order (and in
// request order within one request). Every call decodes fresh values, so
// the caller may modify what it gets.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	recs := slices.Clone(r.spans)
	r.mu.Unlock()
	out := make([]Span, len(recs))
	for i, rec := range recs {
		out[i] = rec.decode()
	}
	return out
}

// Headers returns the headers of every accepted request, in arrival
// order: what OTEL_EXPORTER_OTLP_HEADERS made an exporter send arrives
// here.
func (r *Receiver) Headers() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]http.Header, len(r.headers))
	for i, h := range r.headers {
		out[i] = h.Clone()
	}
	return out
}

// Requests returns how many export requests were accepted (answered 200).
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Errors returns one error for each request that was rejected (wrong path
// or method, unsupported Content-Type or Content-Encoding, or a body that
// is not a valid export request), in arrival order.
func (r *Receiver) Errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errs)
}

// WaitForSpans polls until at least n spans have arrived and returns them
// all (as Spans). If timeout passes first it fails the test with t.Fatalf,
// naming the spans and listing the errors received so far.
func (r *Receiver) WaitForSpans(t testing.TB, n int, timeout time.Duration) []Span {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.count() < n {
		if time.Now().After(deadline) {
			spans := r.Spans()
			names := make([]string, len(spans))
			for i, s := range spans {
				names[i] = s.Name
			}
			t.Fatalf("otlptest: got %d spans %q after %v, want at least %d (requests accepted: %d, rejected: %v)",
				len(spans), names, timeout, n, r.Requests(), r.Errors())
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r.Spans()
}

// count returns how many spans have arrived.
func (r *Receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.spans)
}

// serveHTTP answers a request, recording it in errs when rejected.
func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	status, err := r.handle(w, req)
	if err != nil {
		err = fmt.Errorf("otlptest: %s %s: %w", req.Method, req.URL.Path, err)
		r.mu.Lock()
		r.errs = append(r.errs, err)
		r.mu.Unlock()
		http.Error(w, err.Error(), status)
	}
}

// handle decodes and stores one request and answers it when it succeeds;
// otherwise it returns the status and error to answer with.
func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) (int, error) {
	var msg, resp proto.Message
	switch req.URL.Path {
	case "/v1/traces":
		msg, resp = &coltracepb.ExportTraceServiceRequest{}, &coltracepb.ExportTraceServiceResponse{}
	case "/v1/metrics":
		msg, resp = &colmetricpb.ExportMetricsServiceRequest{}, &colmetricpb.ExportMetricsServiceResponse{}
	case "/v1/logs":
		msg, resp = &collogpb.ExportLogsServiceRequest{}, &collogpb.ExportLogsServiceResponse{}
	}
	if req.Method != http.MethodPost || msg == nil {
		return http.StatusNotFound, errors.New("not found: only POST /v1/traces, /v1/metrics and /v1/logs are served")
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, maxBody)
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return http.StatusBadRequest, fmt.Errorf("reading gzip body: %w", err)
		}
		body = zr
	default:
		return http.StatusUnsupportedMediaType, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("reading body: %w", err)
	}
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	switch ct {
	case "application/x-protobuf":
		err = proto.Unmarshal(data, msg)
	case "application/json":
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, msg)
	default:
		return http.StatusUnsupportedMediaType, fmt.Errorf("unsupported Content-Type %q, want application/x-protobuf or application/json", ct)
	}
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("decoding %s: %w", msg.ProtoReflect().Descriptor().Name(), err)
	}
	if err := r.store(msg, ct == "application/json", req.Header.Clone()); err != nil {
		return http.StatusBadRequest, err
	}
	out, _ := proto.Marshal(resp)
	if ct == "application/json" {
		out = []byte("{}") // the spec wants the answer in the request's encoding
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(out)
	return 0, nil
}

// store checks and keeps what an accepted request carries, and the
// request's headers (for gRPC: its metadata).
func (r *Receiver) store(msg proto.Message, fromJSON bool, h http.Header) error {
	var (
		spans []received
		mets  []receivedMetric
		logs  []receivedLog
	)
	switch msg := msg.(type) {
	case *coltracepb.ExportTraceServiceRequest:
		for i, rs := range msg.GetResourceSpans() {
			for j, ss := range rs.GetScopeSpans() {
				for k, sp := range ss.GetSpans() {
					if err := checkIDs(sp, fromJSON); err != nil {
						return fmt.Errorf("resource_spans[%d].scope_spans[%d].spans[%d]: %w", i, j, k, err)
					}
					spans = append(spans, received{sp, rs.GetResource(), ss.GetScope().GetName()})
				}
			}
		}
	case *colmetricpb.ExportMetricsServiceRequest:
		for _, rm := range msg.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					mets = append(mets, receivedMetric{m, rm.GetResource(), sm.GetScope().GetName()})
				}
			}
		}
	case *collogpb.ExportLogsServiceRequest:
		for i, rl := range msg.GetResourceLogs() {
			for j, sl := range rl.GetScopeLogs() {
				for k, lr := range sl.GetLogRecords() {
					if err := checkLogIDs(lr, fromJSON); err != nil {
						return fmt.Errorf("resource_logs[%d].scope_logs[%d].log_records[%d]: %w", i, j, k, err)
					}
					logs = append(logs, receivedLog{lr, rl.GetResource(), sl.GetScope().GetName()})
				}
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, spans...)
	r.metrics = append(r.metrics, mets...)
	r.logs = append(r.logs, logs...)
	r.headers = append(r.headers, h)
	r.requests++
	return nil
}

// checkIDs checks the lengths of sp's ids. With fromJSON it first turns
// them back into bytes: OTLP/JSON writes ids as hex, which protojson took
// for base64, and base64 re-encoding recovers the hex text exactly.
func checkIDs(sp *tracepb.Span, fromJSON bool) error {
	names := []string{"trace_id", "span_id", "parent_span_id"}
	ids := []*[]byte{&sp.TraceId, &sp.SpanId, &sp.ParentSpanId}
	for i, l := range sp.GetLinks() {
		names = append(names, fmt.Sprintf("links[%d].trace_id", i), fmt.Sprintf("links[%d].span_id", i))
		ids = append(ids, &l.TraceId, &l.SpanId)
	}
	for i, id := range ids {
		if fromJSON && len(*id) > 0 {
			b, err := hex.DecodeString(base64.StdEncoding.EncodeToString(*id))
			if err != nil {
				return fmt.Errorf("%s is not hex", names[i])
			}
			*id = b
		}
		want := 8
		if strings.HasSuffix(names[i], "trace_id") {
			want = 16
		}
		if len(*id) != want && (i != 2 || len(*id) != 0) { // parent_span_id may be empty
			return fmt.Errorf("%s is %d bytes, want %d", names[i], len(*id), want)
		}
	}
	return nil
}

// decode converts rec into a Span sharing no memory with rec.
func (rec received) decode() Span {
	s := rec.span
	out := Span{
		TraceID:       hex.EncodeToString(s.GetTraceId()),
		SpanID:        hex.EncodeToString(s.GetSpanId()),
		ParentSpanID:  hex.EncodeToString(s.GetParentSpanId()),
		Name:          s.GetName(),
		Kind:          strings.ToLower(strings.TrimPrefix(s.GetKind().String(), "SPAN_KIND_")),
		Start:         unixNano(s.GetStartTimeUnixNano()),
		End:           unixNano(s.GetEndTimeUnixNano()),
		Attributes:    attributes(s.GetAttributes()),
		StatusCode:    strings.ToLower(strings.TrimPrefix(s.GetStatus().GetCode().String(), "STATUS_CODE_")),
		StatusMessage: s.GetStatus().GetMessage(),
		Resource:      attributes(rec.resource.GetAttributes()),
		Scope:         rec.scope,
	}
	for _, e := range s.GetEvents() {
		out.Events = append(out.Events, SpanEvent{Name: e.GetName(), Attributes: attributes(e.GetAttributes())})
	}
	for _, l := range s.GetLinks() {
		out.Links = append(out.Links, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())})
	}
	return out
}

// unixNano converts an OTLP timestamp; 0 (not set) becomes the zero Time.
func unixNano(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ns))
}

// attributes decodes kvs into a map, never nil.
func attributes(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

// value decodes v as described at Span.Attributes; nil when v is empty.
func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return slices.Clone(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		vals := x.ArrayValue.GetValues()
		out := make([]any, len(vals))
		for i, e := range vals {
			out[i] = value(e)
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return attributes(x.KvlistValue.GetValues())
	default:
		return nil
	}
}
