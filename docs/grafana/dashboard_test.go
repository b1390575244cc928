// Package grafana_test checks the Grafana dashboard beside it against
// what cairn emits: every metric and label its queries name is one that a
// real agent run records, under the name Prometheus gives it when it
// receives cairn's metrics over OTLP (internal/promname).
package grafana_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/internal/promname"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// emitted runs an agent (runAgent) and returns, by Prometheus series
// name, the labels of the series its metrics give.
func emitted(t *testing.T) map[string][]string {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	runAgent(t, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	series := map[string][]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			kind, ok := promname.KindOf(m.Data)
			if !ok {
				continue
			}
			var labels []string
			for _, set := range attributeSets(m.Data) {
				for _, kv := range set.ToSlice() {
					labels = append(labels, promname.Label(string(kv.Key)))
				}
			}
			for _, s := range promname.Series(m.Name, m.Unit, kind) {
				series[s] = append(series[s], labels...)
				if strings.HasSuffix(s, "_bucket") {
					series[s] = append(series[s], "le")
				}
			}
		}
	}
	for s, labels := range series {
		slices.Sort(labels)
		series[s] = slices.Compact(labels)
	}
	return series
}

// runAgent runs an agent, reporting to mp, whose run records every
// instrument cairn has: a model call with token usage, a tool call that
// fails once and is retried, one that waits for an approval, and a final
// answer. The worker has stopped when it returns.
func runAgent(t *testing.T, mp *sdkmetric.MeterProvider) {
	t.Helper()
	type orderArgs struct {
		Order string `json:"order"`
	}
	var lookups atomic.Int64
	lookup := tools.MustNew("lookup_order", "Find an order.", func(ctx context.Context, in orderArgs) (string, error) {
		if lookups.Add(1) == 1 {
			return "", tools.Retryable(errors.New("database busy"))
		}
		return "order " + in.Order + " is paid", nil
	}, tools.Retry(durable.RetryPolicy{InitialInterval: time.Millisecond}))
	refund := tools.MustNew("refund", "Refund an order.", func(ctx context.Context, in orderArgs) (string, error) {
		return "refunded", nil
	}, tools.RequireApproval())
	set, err := tools.NewSet(lookup, refund)
	require.NoError(t, err)
	turn := func(content string, calls ...providers.ToolCall) providers.Response {
		return providers.Response{Model: "scripted-2026", Message: providers.Message{Content: content, ToolCalls: calls},
			Usage: providers.Usage{InputTokens: 100, OutputTokens: 10}}
	}
	support := &agent.Agent{Name: "support", Tools: set, Model: scripted.New(
		turn("", providers.ToolCall{ID: "c1", Name: "lookup_order", Arguments: `{"order":"A1"}`},
			providers.ToolCall{ID: "c2", Name: "refund", Arguments: `{"order":"A1"}`}),
		turn("Refunded."))}

	rt := agent.NewRuntime(inmem.New(), agent.Options{MeterProvider: mp, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, rt.Register(support))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Drained, not run and stopped: a worker stopped just as it commits
	// the run's last write may not report it (see examples/crash's
	// TestTraceExported), and cairn.runs comes with that write.
	w := rt.NewWorker(durable.WorkerOptions{})
	run, err := rt.Start(ctx, support, "refund-1", agent.Input{Message: "Refund A1."})
	require.NoError(t, err)
	decided := false
	for {
		require.NoError(t, w.Drain(ctx))
		info, err := run.Describe(ctx)
		require.NoError(t, err)
		if info.Status.Terminal() {
			break
		}
		if !decided {
			pending, err := rt.Pending(ctx, agent.PendingFilter{RunID: "refund-1"})
			require.NoError(t, err)
			if len(pending) > 0 {
				require.NoError(t, rt.Decide(ctx, "refund-1", agent.Decision{CallID: pending[0].CallID, Approved: true, By: "alice"}))
				decided = true
			}
		}
		require.NoError(t, ctx.Err(), "the run did not end (status %s)", info.Status)
		time.Sleep(time.Millisecond) // a retry's backoff
	}
	res, err := run.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, "Refunded.", res.Text)
	require.True(t, decided, "no approval was requested")
}

// attributeSets returns the attribute sets of an aggregation's points.
func attributeSets(data metricdata.Aggregation) []attribute.Set {
	return append(attributeSetsOf[int64](data), attributeSetsOf[float64](data)...)
}

// attributeSetsOf returns the attribute sets of the points of an
// aggregation of values of type N, if it is one.
func attributeSetsOf[N int64 | float64](data metricdata.Aggregation) []attribute.Set {
	var sets []attribute.Set
	switch d := data.(type) {
	case metricdata.Sum[N]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Gauge[N]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Histogram[N]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.ExponentialHistogram[N]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	}
	return sets
}

// dashboard is what the test reads of a Grafana dashboard's JSON model.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"` // a string, or {"query": "..."}
	Datasource *datasource     `json:"datasource"`
}

// query returns a query variable's PromQL: its query, a string or an
// object holding one.
func (v variable) query() (string, error) {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s, nil
	}
	var obj struct {
		Query string `json:"query"`
	}
	err := json.Unmarshal(v.Query, &obj)
	return obj.Query, err
}

// resourceLabel reports whether every series has label in Prometheus,
// whatever its attributes: job (service.namespace/service.name) and
// instance (service.instance.id) come from the resource.
func resourceLabel(label string) bool { return label == "job" || label == "instance" }

// check returns a problem for each query of d (a panel's, or a template
// variable's) that names a metric series not in emitted, or a label that
// a series it names does not have, and for each panel not on the
// ${datasource} variable.
func check(d dashboard, emitted map[string][]string) []error {
	var errs []error
	checkQuery := func(where, expr string, extraLabels ...string) {
		q, err := promname.ParseQuery(expr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			return
		}
		if len(q.Metrics) == 0 {
			errs = append(errs, fmt.Errorf("%s: %q names no metric", where, expr))
		}
		for _, m := range q.Metrics {
			labels, ok := emitted[m]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %s is not a series cairn emits", where, m))
				continue
			}
			for _, l := range append(q.Labels, extraLabels...) {
				if !slices.Contains(labels, l) && !resourceLabel(l) {
					errs = append(errs, fmt.Errorf("%s: %s has no label %s (it has %s)", where, m, l, strings.Join(labels, ", ")))
				}
			}
		}
	}
	for _, p := range flatten(d.Panels) {
		if p.Type == "row" {
			continue
		}
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			errs = append(errs, fmt.Errorf("%s: datasource %+v, want uid ${datasource}", where, p.Datasource))
		}
		if len(p.Targets) == 0 {
			errs = append(errs, fmt.Errorf("%s: no query", where))
		}
		for i, target := range p.Targets {
			if target.Datasource != nil && target.Datasource.UID != "${datasource}" {
				errs = append(errs, fmt.Errorf("%s, query %d: datasource %+v, want uid ${datasource}", where, i, target.Datasource))
			}
			checkQuery(fmt.Sprintf("%s, query %d", where, i), target.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		where := "variable " + v.Name
		expr, err := v.query()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		// Grafana's label_values(selector, label): the label of the
		// series the selector picks.
		m := labelValues.FindStringSubmatch(expr)
		if m == nil {
			errs = append(errs, fmt.Errorf("%s: %q is not label_values(selector, label)", where, expr))
			continue
		}
		checkQuery(where, m[1], m[2])
	}
	return errs
}

// flatten returns ps and the panels of the collapsed rows among them.
func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(append(out, p), flatten(p.Panels)...)
	}
	return out
}

// labelValues matches Grafana's label_values(selector, label).
var labelValues = regexp.MustCompile(`^\s*label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile("cairn-dashboard.json")
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(data, &d), "cairn-dashboard.json")
	return d
}

// TestDashboardQueriesWhatCairnEmits: every query of the dashboard names
// series and labels that a real run records, as Prometheus names them.
func TestDashboardQueriesWhatCairnEmits(t *testing.T) {
	d := readDashboard(t)
	series := emitted(t)
	for _, err := range check(d, series) {
		t.Error(err)
	}

	// The variables a user sets: the data source, and filters on the
	// service and the agent.
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if assert.Contains(t, vars, "datasource") {
		assert.Equal(t, "datasource", vars["datasource"].Type)
		assert.JSONEq(t, `"prometheus"`, string(vars["datasource"].Query), "the datasource variable's plugin")
	}
	for name, label := range map[string]string{"job": "job", "agent": "gen_ai_agent_name"} {
		if assert.Contains(t, vars, name) {
			expr, err := vars[name].query()
			require.NoError(t, err)
			assert.Contains(t, expr, ", "+label+")", "variable %s lists the values of %s", name, label)
		}
	}

	// What the dashboard does not show, so that a new metric is a
	// conscious choice.
	used := map[string]bool{}
	for _, p := range flatten(d.Panels) {
		for _, target := range p.Targets {
			q, _ := promname.ParseQuery(target.Expr)
			for _, m := range q.Metrics {
				used[m] = true
			}
		}
	}
	for s := range series {
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s, "_bucket"), "_sum"), "_count")
		if !used[family] && !used[family+"_bucket"] && !used[family+"_sum"] && !used[family+"_count"] {
			t.Logf("not on the dashboard: %s", s)
		}
	}
}

// TestCheckFindsWhatCairnDoesNotEmit: the check above fails for a
// dashboard that names a metric or a label cairn does not emit.
func TestCheckFindsWhatCairnDoesNotEmit(t *testing.T) {
	series := map[string][]string{
		"cairn_steps_total":                  {"cairn_step_kind", "cairn_step_outcome"},
		"cairn_approval_wait_seconds_bucket": {"gen_ai_agent_name", "le"},
	}
	for expr, want := range map[string]string{
		`rate(cairn_steps_total{job="a"}[5m])`:                                        "",
		`rate(cairn_steps[5m])`:                                                       "cairn_steps is not a series cairn emits",
		`sum by (gen_ai_agent_name) (rate(cairn_steps_total[5m]))`:                    "cairn_steps_total has no label gen_ai_agent_name",
		`histogram_quantile(0.5, sum by (le) (rate(cairn_approval_wait_bucket[5m])))`: "cairn_approval_wait_bucket is not a series",
		`rate({__name__=~"cairn_.*"}[5m])`:                                            "a name matched other than with =",
		`vector(1)`:                                                                   "names no metric",
	} {
		var d dashboard
		require.NoError(t, json.Unmarshal([]byte(`{"panels": [{"id": 1, "type": "timeseries", "title": "p",
			"datasource": {"type": "prometheus", "uid": "${datasource}"}, "targets": [{"expr": `+strconv.Quote(expr)+`}]}]}`), &d))
		errs := check(d, series)
		if want == "" {
			assert.Empty(t, errs, expr)
			continue
		}
		if assert.Len(t, errs, 1, expr) {
			assert.ErrorContains(t, errs[0], want, expr)
		}
	}
	var d dashboard
	require.NoError(t, json.Unmarshal([]byte(`{"templating": {"list": [
		{"name": "agent", "type": "query", "query": {"query": "label_values(cairn_steps_total, gen_ai_agent_name)"}}]}}`), &d))
	errs := check(d, series)
	if assert.Len(t, errs, 1) {
		assert.ErrorContains(t, errs[0], "cairn_steps_total has no label gen_ai_agent_name")
	}
}
