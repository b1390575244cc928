package grafana_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cairn-dev/cairn/internal/syncbuf"
)

// TestDashboardOnPrometheus runs every query of the dashboard on a real
// Prometheus server that has scraped the metrics of an agent run, served
// by OpenTelemetry's Prometheus exporter, which names them as
// Prometheus's OTLP receiver does: each query must be valid PromQL and
// return series. Grafana's variables are given values that select
// everything. It needs the prometheus binary on the PATH (.ci/run
// installs Debian's).
func TestDashboardOnPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("no prometheus on the PATH (apt-get install prometheus)")
	}
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	require.NoError(t, err)
	runAgent(t, sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)))
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(target.Close)

	prom := startPrometheus(t, bin, strings.TrimPrefix(target.URL, "http://"))
	// rate needs two samples in its window: wait for them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := prom.query(`rate(cairn_steps_total[30s])`)
		if err == nil && len(res) > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "Prometheus has no two samples of cairn_steps_total after 30 s (last error: %v)", err)
		time.Sleep(200 * time.Millisecond)
	}

	d := readDashboard(t)
	for _, p := range flatten(d.Panels) {
		for i, target := range p.Targets {
			expr := grafanaExpand(target.Expr)
			res, err := prom.query(expr)
			if assert.NoError(t, err, "panel %q, query %d: %s", p.Title, i, expr) {
				assert.NotEmpty(t, res, "panel %q, query %d returns nothing: %s", p.Title, i, expr)
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, err := v.query()
		require.NoError(t, err)
		m := labelValues.FindStringSubmatch(q)
		require.NotNil(t, m, "variable %s: %s", v.Name, q)
		expr := fmt.Sprintf("count by (%s) (%s)", m[2], grafanaExpand(m[1]))
		res, err := prom.query(expr)
		if assert.NoError(t, err, "variable %s: %s", v.Name, expr) && assert.NotEmpty(t, res, "variable %s: %s", v.Name, expr) {
			assert.NotEmpty(t, res[0].Metric[m[2]], "variable %s: no value of %s in %s", v.Name, m[2], expr)
		}
	}
}

// grafanaExpand gives Grafana's variables in a dashboard query values
// that select everything: every service, every agent, a rate interval
// that spans several scrapes.
func grafanaExpand(expr string) string {
	return strings.NewReplacer("$__rate_interval", "30s", "$__range", "1h", "$__interval", "15s",
		"${job}", ".*", "$job", ".*", "${agent}", ".*", "$agent", ".*").Replace(expr)
}

// promServer is a Prometheus server started by startPrometheus.
type promServer struct{ url string }

// sample is one series of an instant query's result.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

// query runs an instant query and returns its vector; a query that is not
// valid PromQL, or that does not give a vector, is an error.
func (p promServer) query(expr string) ([]sample, error) {
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string   `json:"resultType"`
			Result     []sample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("%s: %w", resp.Status, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s: %s", resp.Status, body.Error)
	}
	if body.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result of type %s, want vector", body.Data.ResultType)
	}
	return body.Data.Result, nil
}

// startPrometheus starts a Prometheus server on a free loopback port,
// with its own storage, scraping target every second. It is stopped when
// the test ends.
func startPrometheus(t *testing.T, bin, target string) promServer {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cairn\n    static_configs:\n      - targets: [%q]\n", target)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644))
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	var logs syncbuf.Buffer // written by exec's goroutines
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("prometheus:\n%s", logs.String())
		}
	})
	p := promServer{url: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited at start:\n%s", logs.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "prometheus not ready after 20 s:\n%s", logs.String())
		time.Sleep(100 * time.Millisecond)
	}
}
