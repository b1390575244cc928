package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/cli"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// sameAs checks that a command line succeeded and printed what the golden
// file name holds (after its first line, the command line it was made
// with).
func sameAs(t *testing.T, name string, r result) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".golden"))
	require.NoError(t, err)
	_, want, _ := strings.Cut(string(data), "\n")
	require.Equal(t, 0, r.code, "exit status; stderr:\n%s", r.err)
	assert.Equal(t, want, stable(r.out), "output differs from testdata/%s.golden", name)
}

// withEnv returns app with the environment env.
func withEnv(app cli.App, env map[string]string) cli.App {
	app.Getenv = func(key string) string { return env[key] }
	return app
}

// TestCluster points the tool at a 3-master Redis Cluster, whose runs are
// under a prefix of their own: it sees them with a redis+cluster:// URL
// and the prefix, given as flags before or after the command, or in the
// environment; a single server's URL gets a hint.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster test: starts three redis-servers and waits for the cluster to form (about 2 s); run without -short")
	}
	cluster := redistest.StartCluster(t, 3)
	url := cluster.URL()
	w := newWorldAt(t, url, map[string]string{cli.EnvRedisURL: url, cli.EnvRedisPrefix: "ops"}, agent.Options{},
		[]redis.Option{redis.WithPrefix("ops")})
	w.start(supportAgent(), "refund-1", agent.Input{Message: "My pizza came cold, refund my 120 euros."}, backend.StatusAwaitingApproval)

	sameAs(t, "show_waiting", w.cairn("show", "refund-1"))
	sameAs(t, "runs_awaiting", w.cairn("runs", "--status", "awaiting_approval"))
	bare := withEnv(w.app, nil)
	sameAs(t, "show_waiting", runApp(t, bare, "--redis", url, "--prefix", "ops", "show", "refund-1"))
	sameAs(t, "show_waiting", runApp(t, bare, "show", "refund-1", "--redis", url, "--prefix=ops"))
	sameAs(t, "show_waiting", runApp(t, bare, "--prefix", "ops", "show", "--redis", url, "refund-1"))
	wrong := withEnv(w.app, map[string]string{cli.EnvRedisURL: "redis://127.0.0.1:1/0", cli.EnvRedisPrefix: "other"})
	sameAs(t, "show_waiting", runApp(t, wrong, "show", "refund-1", "--redis", url, "--prefix", "ops"))

	r := w.cairn("runs", "--prefix", "cairn")
	assert.Equal(t, 0, r.code, r.err)
	assert.NotContains(t, r.out, "refund-1", "runs under the default prefix")

	// One master's URL: the key is on another master, or on this one.
	moved := 0
	for _, m := range cluster.Masters {
		r := runApp(t, bare, "show", "refund-1", "--redis", m.URL(), "--prefix", "ops")
		if r.code != 0 {
			assert.Contains(t, r.err, "MOVED")
			assert.Contains(t, r.err, "(it is a Redis Cluster: use a redis+cluster:// URL)")
			moved++
		}
	}
	assert.Equal(t, 2, moved, "masters that do not hold the run's slot")
}

// TestPrefix runs the tool on a store under a prefix of its own, given as
// a flag or in the environment; the repair of a damaged history names the
// history's key under that prefix.
func TestPrefix(t *testing.T) {
	srv := redistest.Start(t)
	w := newWorldAt(t, srv.URL(), map[string]string{cli.EnvRedisURL: srv.URL(), cli.EnvRedisPrefix: "acme"}, agent.Options{},
		[]redis.Option{redis.WithPrefix("acme")})
	w.srv = srv
	w.start(supportAgent(), "refund-1", agent.Input{Message: "My pizza came cold, refund my 120 euros."}, backend.StatusAwaitingApproval)
	sameAs(t, "runs_awaiting", w.cairn("runs", "--status", "awaiting_approval"))
	noPrefix := withEnv(w.app, map[string]string{cli.EnvRedisURL: srv.URL()})
	sameAs(t, "runs_awaiting", runApp(t, noPrefix, "--prefix", "acme", "runs", "--status", "awaiting_approval"))
	r := runApp(t, noPrefix, "show", "refund-1")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err, "run not found: refund-1", "the default prefix holds no such run")

	r = w.cairn("runs", "--redis", "http://u:secret@localhost")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.err, `cairn runs: --redis: open redis store: Redis URL: unknown scheme "http"`)
	r = w.cairn("runs", "--redis", "redis+cluster://u:secret@/")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.err, "redis+cluster URL names no address")
	assert.NotContains(t, r.err, "secret")

	info := w.waitStatus("refund-1", backend.StatusAwaitingApproval)
	require.NoError(t, srv.Client().RPush(t.Context(), "acme:{r:refund-1}:history", "not an event").Err())
	r = w.cairn("signal", "refund-1", "nudge") // a worker finds the damage and parks the run
	require.Equal(t, 0, r.code, r.err)
	w.waitStatus("refund-1", backend.StatusParked)
	r = w.cairn("show", "refund-1")
	assert.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.out, fmt.Sprintf("redis-cli LTRIM 'acme:{r:refund-1}:history' 0 %d", info.HistoryLen-1))
}

// TestLeastPrivilegeUser runs the tool as an ACL user with
// redis.ACLRules of the store's prefix: it reads, approves and pings
// with nothing denied.
func TestLeastPrivilegeUser(t *testing.T) {
	w := newWorld(t)
	w.start(supportAgent(), "refund-1", agent.Input{Message: "My pizza came cold, refund my 120 euros."}, backend.StatusAwaitingApproval)
	args := []any{"acl", "setuser", "operator", "on", ">s3cret"}
	for _, rule := range redis.ACLRules("") {
		args = append(args, rule)
	}
	require.NoError(t, w.srv.Client().Do(t.Context(), args...).Err())
	url := strings.Replace(w.srv.URL(), "redis://", "redis://operator:s3cret@", 1)
	sameAs(t, "show_waiting", w.cairn("show", "refund-1", "--redis", url))
	r := w.cairn("approve", "refund-1", "call_1_0", "--by", "alice@example.com", "--redis", url)
	assert.Equal(t, 0, r.code, r.err)
	w.waitStatus("refund-1", backend.StatusCompleted)
	log, err := w.srv.Client().ACLLog(t.Context(), 10).Result()
	require.NoError(t, err)
	assert.Empty(t, log, "ACL LOG")

	r = w.cairn("runs", "--redis", strings.Replace(url, "s3cret", "wrong", 1))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err, "WRONGPASS")
	assert.NotContains(t, r.err, "wrong@", "the password is hidden")
}

// TestTLS runs the tool on servers that speak TLS: one that needs only the
// CA, given as a flag or in the environment, and one that requires a
// client certificate. Errors say what is missing.
func TestTLS(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithTLS())
	certs := srv.Certs()
	caOnly, err := redis.TLSFiles{CA: certs.CA}.Config()
	require.NoError(t, err)
	w := newWorldAt(t, srv.URL(), map[string]string{cli.EnvRedisURL: srv.URL()}, agent.Options{},
		[]redis.Option{redis.WithTLS(caOnly)})
	w.start(supportAgent(), "refund-1", agent.Input{Message: "My pizza came cold, refund my 120 euros."}, backend.StatusAwaitingApproval)

	sameAs(t, "show_waiting", w.cairn("show", "refund-1", "--tls-ca", certs.CA))
	sameAs(t, "show_waiting", w.cairn("--tls-ca", certs.CA, "show", "refund-1"))
	sameAs(t, "show_waiting", w.cairn("--tls-ca="+certs.CA, "--tls-server-name", "localhost", "show", "refund-1"))
	env := withEnv(w.app, map[string]string{cli.EnvRedisURL: srv.URL(), cli.EnvTLSCA: certs.CA, cli.EnvTLSServerName: "localhost"})
	sameAs(t, "show_waiting", runApp(t, env, "show", "refund-1"))

	r := w.cairn("show", "refund-1")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err, "certificate signed by unknown authority (give the CA that signs the server's certificate with --tls-ca)")
	r = runApp(t, env, "show", "refund-1", "--tls-server-name", "elsewhere")
	assert.Equal(t, 1, r.code, "the flag wins over the environment")
	assert.Contains(t, r.err, "certificate is valid for localhost, not elsewhere (give the name the server's certificate holds with --tls-server-name)")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	r = w.cairn("show", "refund-1", "--tls-ca", missing)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.err, "cairn show: TLS CA file: open "+missing+": no such file or directory")
	r = w.cairn("show", "refund-1", "--tls-ca", certs.CA, "--redis", strings.Replace(srv.URL(), "rediss://", "redis://", 1))
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.err, "TLS settings for a redis:// URL, which does not use TLS: use rediss://")

	mutual := redistest.Start(t, redistest.WithClientCerts())
	mc := mutual.Certs()
	r = w.cairn("runs", "--redis", mutual.URL(), "--tls-ca", mc.CA, "--tls-cert", mc.ClientCert, "--tls-key", mc.ClientKey)
	assert.Equal(t, 0, r.code, r.err)
	r = w.cairn("--redis", mutual.URL(), "--tls-cert", mc.ClientCert, "--tls-key", mc.ClientKey, "--tls-ca", mc.CA, "runs", "--json")
	assert.Equal(t, 0, r.code, r.err)
	r = w.cairn("runs", "--redis", mutual.URL(), "--tls-ca", mc.CA)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err, "cairn runs: cannot reach Redis at "+mutual.URL())
	assertClientCertHint(t, r.err)
	env = withEnv(w.app, map[string]string{cli.EnvRedisURL: mutual.URL(), cli.EnvTLSCA: mc.CA, cli.EnvTLSCert: mc.ClientCert,
		cli.EnvTLSKey: mc.ClientKey})
	r = runApp(t, env, "runs")
	assert.Equal(t, 0, r.code, r.err)
	r = w.cairn("runs", "--redis", mutual.URL(), "--tls-ca", mc.CA, "--tls-cert", mc.ClientCert)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.err, "TLS client certificate "+mc.ClientCert+" without its key: give both or neither")
}

// TestEvalTLS runs cairn eval's cases on a Redis that requires a client
// certificate, given with the --tls-* flags.
func TestEvalTLS(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithClientCerts())
	certs := srv.Certs()
	app := cli.App{Agents: []*agent.Agent{supportAgent()}}
	r := runApp(t, app, "eval", "support", "testdata/eval/runner.yaml", "--tags", "other,reject", "--redis", srv.URL(),
		"--tls-ca", certs.CA, "--tls-cert", certs.ClientCert, "--tls-key", certs.ClientKey)
	assert.Equal(t, 1, r.code, "exit status\nstdout:\n%s\nstderr:\n%s", r.out, r.err)
	assert.Regexp(t, `refund rejected\s+fail\s+0/1`, r.out)
	keys, err := srv.Client().Keys(t.Context(), "cairn-eval:*").Result()
	require.NoError(t, err)
	assert.NotEmpty(t, keys, "the trials' runs are in Redis, under cairn-eval:")

	r = runApp(t, app, "eval", "support", "testdata/eval/runner.yaml", "--redis", srv.URL(), "--tls-ca", certs.CA)
	assert.Equal(t, 1, r.code)
	assertClientCertHint(t, r.err)
}

// assertClientCertHint checks that an error says to give a client
// certificate: from the server's refusal, or from the reset that a first
// write may meet before it (TLS 1.3 refuses after the handshake).
func assertClientCertHint(t *testing.T, stderr string) {
	t.Helper()
	assert.Regexp(t, `\(the server (asks for a client certificate:|closed the connection: if it asks for a client certificate,) give --tls-cert and --tls-key\)`, stderr)
}
