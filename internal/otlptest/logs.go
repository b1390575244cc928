package otlptest

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// LogRecord is one received log record, decoded from OTLP into plain
// values.
type LogRecord struct {
	Time            time.Time
	TraceID, SpanID string // lowercase hex; "" when the record has none
	SeverityText    string
	SeverityNumber  int32
	Body            any            // typed as a Span.Attributes value
	Attributes      map[string]any // typed as Span.Attributes
	Resource        map[string]any // resource attributes, typed as Span.Attributes
	Scope           string         // instrumentation scope name
}

// receivedLog is a stored log record with what it needs from its
// enclosing messages.
type receivedLog struct {
	record   *logspb.LogRecord
	resource *resourcepb.Resource
	scope    string
}

// Logs returns all log records received so far, in arrival order. Every
// call decodes fresh values.
func (r *Receiver) Logs() []LogRecord {
	r.mu.Lock()
	recs := slices.Clone(r.logs)
	r.mu.Unlock()
	out := make([]LogRecord, len(recs))
	for i, rec := range recs {
		lr := rec.record
		out[i] = LogRecord{
			Time:           unixNano(lr.GetTimeUnixNano()),
			TraceID:        hex.EncodeToString(lr.GetTraceId()),
			SpanID:         hex.EncodeToString(lr.GetSpanId()),
			SeverityText:   lr.GetSeverityText(),
			SeverityNumber: int32(lr.GetSeverityNumber()),
			Body:           value(lr.GetBody()),
			Attributes:     attributes(lr.GetAttributes()),
			Resource:       attributes(rec.resource.GetAttributes()),
			Scope:          rec.scope,
		}
	}
	return out
}

// checkLogIDs checks the lengths of lr's ids, which may be empty; with
// fromJSON it first turns them back from hex (see checkIDs).
func checkLogIDs(lr *logspb.LogRecord, fromJSON bool) error {
	for _, id := range []struct {
		name string
		b    *[]byte
		want int
	}{{"trace_id", &lr.TraceId, 16}, {"span_id", &lr.SpanId, 8}} {
		if len(*id.b) == 0 {
			continue
		}
		if fromJSON {
			b, err := hex.DecodeString(base64.StdEncoding.EncodeToString(*id.b))
			if err != nil {
				return fmt.Errorf("%s is not hex", id.name)
			}
			*id.b = b
		}
		if len(*id.b) != id.want {
			return fmt.Errorf("%s is %d bytes, want %d", id.name, len(*id.b), id.want)
		}
	}
	return nil
}
