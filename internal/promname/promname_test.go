package promname_test

import (
	"testing"

	"github.com/prometheus/otlptranslator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/promname"
)

// cases are metrics of the specification's examples, of OpenTelemetry's
// semantic conventions and of cairn, with the names Prometheus gives them.
var cases = []struct {
	name, unit string
	kind       promname.Kind
	want       string
}{
	{"cairn.steps", "{step}", promname.Counter, "cairn_steps_total"},
	{"cairn.retries", "{attempt}", promname.Counter, "cairn_retries_total"},
	{"cairn.runs", "{run}", promname.Counter, "cairn_runs_total"},
	{"cairn.approval.wait", "s", promname.Histogram, "cairn_approval_wait_seconds"},
	{"gen_ai.client.token.usage", "{token}", promname.Histogram, "gen_ai_client_token_usage"},
	{"gen_ai.client.operation.duration", "s", promname.Histogram, "gen_ai_client_operation_duration_seconds"},
	{"http.server.request.duration", "s", promname.Histogram, "http_server_request_duration_seconds"},
	{"system.filesystem.usage", "By", promname.Gauge, "system_filesystem_usage_bytes"},
	{"system.network.dropped", "{packets}", promname.Counter, "system_network_dropped_total"},
	{"system.network.dropped", "packets", promname.Gauge, "system_network_dropped_packets"},
	{"system.memory.utilization", "1", promname.Gauge, "system_memory_utilization_ratio"},
	{"requests.count", "1", promname.Counter, "requests_count_total"},
	{"requests.total", "", promname.Counter, "requests_total"},
	{"network.io", "By/s", promname.Gauge, "network_io_bytes_per_second"},
	{"queue.rate", "{message}/s", promname.Gauge, "queue_rate_per_second"},
	{"latency.seconds", "s", promname.Histogram, "latency_seconds"},
	{"(lambda).function.executions(#)", "", promname.Gauge, "lambda_function_executions"},
	{"db..client__connections", "{connection}", promname.Gauge, "db_client_connections"},
	{"2xx.responses", "", promname.Counter, "_2xx_responses_total"},
	{"cpu.time", "ms", promname.Counter, "cpu_time_milliseconds_total"},
	{"process.uptime", "h", promname.Gauge, "process_uptime_hours"},
}

func TestMetric(t *testing.T) {
	for _, c := range cases {
		assert.Equal(t, c.want, promname.Metric(c.name, c.unit, c.kind), "%s (%q, %v)", c.name, c.unit, c.kind)
	}
}

// TestMatchesPrometheus: the names are those of Prometheus's own
// translator, the code its OTLP receiver runs, with the default strategy.
func TestMatchesPrometheus(t *testing.T) {
	namer := otlptranslator.NewMetricNamer("", otlptranslator.UnderscoreEscapingWithSuffixes)
	types := map[promname.Kind]otlptranslator.MetricType{
		promname.Gauge: otlptranslator.MetricTypeGauge, promname.Counter: otlptranslator.MetricTypeMonotonicCounter,
		promname.Histogram: otlptranslator.MetricTypeHistogram, promname.ExponentialHistogram: otlptranslator.MetricTypeExponentialHistogram,
	}
	for _, c := range cases {
		want, err := namer.Build(otlptranslator.Metric{Name: c.name, Unit: c.unit, Type: types[c.kind]})
		require.NoError(t, err, c.name)
		assert.Equal(t, want, promname.Metric(c.name, c.unit, c.kind), "%s (%q, %v)", c.name, c.unit, c.kind)
	}
	labels := otlptranslator.LabelNamer{}
	for _, key := range []string{"cairn.step.kind", "gen_ai.agent.name", "error.type", "http.response.status_code",
		"a..b", "a/b-c", "9lives", "k8s.pod.name", "has:colon"} {
		want, err := labels.Build(key)
		require.NoError(t, err, key)
		assert.Equal(t, want, promname.Label(key), key)
	}
}

func TestSeries(t *testing.T) {
	assert.Equal(t, []string{"cairn_approval_wait_seconds_bucket", "cairn_approval_wait_seconds_sum", "cairn_approval_wait_seconds_count"},
		promname.Series("cairn.approval.wait", "s", promname.Histogram))
	assert.Equal(t, []string{"cairn_steps_total"}, promname.Series("cairn.steps", "{step}", promname.Counter))
	assert.Equal(t, []string{"rpc_duration_seconds"}, promname.Series("rpc.duration", "s", promname.ExponentialHistogram))
}

func TestParseQuery(t *testing.T) {
	for expr, want := range map[string]promname.Query{
		`sum by (cairn_step_kind, cairn_step_outcome) (rate(cairn_steps_total{job=~"$job"}[$__rate_interval]))`: {
			Metrics: []string{"cairn_steps_total"}, Labels: []string{"cairn_step_kind", "cairn_step_outcome", "job"}},
		`histogram_quantile(0.95, sum by (le) (rate(cairn_approval_wait_seconds_bucket{gen_ai_agent_name=~"${agent:regex}"}[5m])))`: {
			Metrics: []string{"cairn_approval_wait_seconds_bucket"}, Labels: []string{"gen_ai_agent_name", "le"}},
		`sum(increase(a_total[1h] offset 1d)) / ignoring (x) group_left sum without (y) (b_total) > bool 1e-3`: {
			Metrics: []string{"a_total", "b_total"}, Labels: []string{"x", "y"}},
		`{__name__="cairn_runs_total", cairn_run_status!="completed"}`: {
			Metrics: []string{"cairn_runs_total"}, Labels: []string{"cairn_run_status"}},
		`max_over_time(rate(x{a="}{,\""}[5m])[1h:1m]) or vector(0) and on() topk(3, y:z)`: {
			Metrics: []string{"x", "y:z"}, Labels: []string{"a"}},
		`count(up) * $factor`: {Metrics: []string{"up"}},
	} {
		got, err := promname.ParseQuery(expr)
		require.NoError(t, err, expr)
		assert.Equal(t, want, got, expr)
	}
	for _, bad := range []string{
		`{job="x"}`,              // no metric name
		`{__name__=~"cairn_.*"}`, // a name by regex
		`x{__name__="y"}`,        // two names
		`rate(x{a="b"[5m])`,      // unclosed selector
		`x{"a.b"="c"}`,           // a quoted label
		`sum by (a b) (x)`,       // not a label list
		`x{a="b}`,                // unclosed string
	} {
		_, err := promname.ParseQuery(bad)
		assert.Error(t, err, bad)
	}
}
