package otlptest_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/otlptest"
)

// postTo posts body as JSON to path and returns the status.
func postTo(t *testing.T, r *otlptest.Receiver, path, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, r.URL()+path, bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", "k")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.ReadAll(resp.Body)
	return resp.StatusCode
}

func TestJSONMetricsAndLogsDecode(t *testing.T) {
	r := otlptest.NewReceiver(t)
	metrics := `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
		"scopeMetrics":[{"scope":{"name":"lib"},"metrics":[
		{"name":"c","unit":"{x}","sum":{"dataPoints":[{"asInt":"3","attributes":[{"key":"k","value":{"stringValue":"v"}}]}]}},
		{"name":"h","unit":"s","histogram":{"dataPoints":[{"count":"2","sum":1.5}]}}]}]}]}`
	require.Equal(t, http.StatusOK, postTo(t, r, "/v1/metrics", metrics), "errors: %v", r.Errors())
	logs := `{"resourceLogs":[{"scopeLogs":[{"scope":{"name":"lib"},"logRecords":[
		{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","severityText":"INFO","severityNumber":9,
		 "body":{"stringValue":"hi"},"attributes":[{"key":"run_id","value":{"stringValue":"r-1"}}]},
		{"body":{"stringValue":"no trace"}}]}]}]}`
	require.Equal(t, http.StatusOK, postTo(t, r, "/v1/logs", logs), "errors: %v", r.Errors())
	require.Equal(t, http.StatusBadRequest, postTo(t, r, "/v1/logs", `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"0102"}]}]}]}`))

	got := r.Metrics()
	require.Len(t, got, 2)
	assert.Equal(t, otlptest.Metric{Name: "c", Unit: "{x}", Kind: "sum", Scope: "lib",
		Points:   []otlptest.Point{{Attributes: map[string]any{"k": "v"}, Value: 3}},
		Resource: map[string]any{"service.name": "svc"}}, got[0])
	assert.Equal(t, "histogram", got[1].Kind)
	assert.Equal(t, []otlptest.Point{{Attributes: map[string]any{}, Value: 1.5, Count: 2}}, got[1].Points)

	recs := r.Logs()
	require.Len(t, recs, 2)
	assert.Equal(t, "0102030405060708090a0b0c0d0e0f10", recs[0].TraceID)
	assert.Equal(t, "0102030405060708", recs[0].SpanID)
	assert.Equal(t, "hi", recs[0].Body)
	assert.Equal(t, "INFO", recs[0].SeverityText)
	assert.EqualValues(t, 9, recs[0].SeverityNumber)
	assert.Equal(t, "r-1", recs[0].Attributes["run_id"])
	assert.Equal(t, "lib", recs[0].Scope)
	assert.Empty(t, recs[1].TraceID)

	require.Len(t, r.Headers(), 2, "headers of the accepted requests")
	assert.Equal(t, "k", r.Headers()[0].Get("X-Api-Key"))
	assert.Len(t, r.Errors(), 1, "the rejected request")
}
