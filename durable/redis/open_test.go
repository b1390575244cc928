package redis_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// roundTrip creates a run in s and reads it back.
func roundTrip(t *testing.T, s *redis.Store, runID string) {
	t.Helper()
	_, made, err := s.CreateRun(t.Context(), backend.RunInfo{ID: runID, Workflow: "wf"}, []byte("first"))
	require.NoError(t, err, "CreateRun")
	require.True(t, made, "CreateRun: want a new run")
	info, err := s.GetRun(t.Context(), runID)
	require.NoError(t, err, "GetRun")
	assert.Equal(t, "wf", info.Workflow)
}

// withUser puts user:password in a URL.
func withUser(url, userinfo string) string {
	scheme, rest, _ := strings.Cut(url, "://")
	return scheme + "://" + userinfo + "@" + rest
}

// TestOpenCluster opens a store on a 3-master cluster by a
// redis+cluster:// URL, in both forms of addresses, as an ACL user: its
// runs land on every master.
func TestOpenCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster test: starts three redis-servers and waits for the cluster to form (about 2 s); run without -short")
	}
	cluster := redistest.StartCluster(t, 3)
	for _, m := range cluster.Masters {
		require.NoError(t, m.Client().Do(t.Context(), "acl", "setuser", "worker", "on", ">pw", "~*", "+@all").Err())
	}
	addrs := cluster.Addrs()
	s := open(t, withUser(cluster.URL(), "worker:pw"))
	for i := range 30 {
		roundTrip(t, s, "run-"+string(rune('a'+i)))
	}
	for _, m := range cluster.Masters {
		n, err := m.Client().DBSize(t.Context()).Result()
		require.NoError(t, err)
		assert.Positive(t, n, "keys on %s", m.Addr())
	}
	// go-redis's form: one address in the host, more in addr parameters.
	s = open(t, "redis+cluster://worker:pw@"+addrs[0]+"/?addr="+addrs[1]+"&addr="+addrs[2]+"&dial_timeout=2s")
	info, err := s.GetRun(t.Context(), "run-a")
	require.NoError(t, err)
	assert.Equal(t, "run-a", info.ID)
	// One seed is enough: the client learns the others from it.
	s = open(t, "redis+cluster://worker:pw@"+addrs[2])
	_, err = s.GetRun(t.Context(), "run-b")
	require.NoError(t, err)

	c, err := redis.NewClient(cluster.URL(), nil)
	require.NoError(t, err)
	defer c.Close()
	require.IsType(t, &goredis.ClusterClient{}, c)
	assert.Equal(t, addrs, c.(*goredis.ClusterClient).Options().Addrs)
}

// TestOpenClusterTLS opens a store on a cluster whose masters require a
// client certificate, by a rediss+cluster:// URL and WithTLS.
func TestOpenClusterTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster test: starts three redis-servers with TLS and waits for the cluster to form (about 4 s); run without -short")
	}
	cluster := redistest.StartCluster(t, 3, redistest.WithClientCerts())
	certs := cluster.Certs()
	cfg, err := redis.TLSFiles{CA: certs.CA, Cert: certs.ClientCert, Key: certs.ClientKey}.Config()
	require.NoError(t, err)
	s := open(t, cluster.URL(), redis.WithTLS(cfg))
	for i := range 10 {
		roundTrip(t, s, "run-"+string(rune('a'+i)))
	}
}

// TestOpenSentinel opens a store on the master a Sentinel names.
func TestOpenSentinel(t *testing.T) {
	master := redistest.Start(t)
	require.NoError(t, master.Client().Do(t.Context(), "acl", "setuser", "worker", "on", ">pw", "~*", "+@all").Err())
	sentinel := redistest.StartSentinel(t, master, "main")
	s := open(t, "redis+sentinel://worker:pw@"+sentinel.Addr()+"/main")
	roundTrip(t, s, "r1")
	n, err := master.Client().Exists(t.Context(), "cairn:{r:r1}:run").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the run's record on the master")
	// go-redis's form, and a database.
	s = open(t, "redis+sentinel://"+sentinel.Addr()+"/?master_name=main&username=worker&password=pw&db=2")
	roundTrip(t, s, "r2")
	n, err = master.Client().Exists(t.Context(), "cairn:{r:r2}:run").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the run's record in database 0")
}

// TestOpenTLS opens stores on servers that speak TLS: a CA is enough for
// one that asks no client certificate; one that requires it refuses a
// client without one, and the error says so.
func TestOpenTLS(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithTLS())
	certs := srv.Certs()
	caOnly, err := redis.TLSFiles{CA: certs.CA}.Config()
	require.NoError(t, err)
	roundTrip(t, open(t, srv.URL(), redis.WithTLS(caOnly)), "r1")
	// localhost is in the certificate, not "elsewhere".
	named, err := redis.TLSFiles{CA: certs.CA, ServerName: "localhost"}.Config()
	require.NoError(t, err)
	_, err = open(t, srv.URL(), redis.WithTLS(named)).GetRun(t.Context(), "r1")
	require.NoError(t, err, "server name localhost")
	wrongName, err := redis.TLSFiles{CA: certs.CA, ServerName: "elsewhere"}.Config()
	require.NoError(t, err)
	_, err = open(t, srv.URL()+"?max_retries=-1", redis.WithTLS(wrongName)).GetRun(t.Context(), "r1")
	assert.ErrorContains(t, err, "certificate is valid for localhost, not elsewhere")
	// Without a CA, the system's roots, which do not know the test's.
	_, err = open(t, srv.URL()+"?max_retries=-1").GetRun(t.Context(), "r1")
	assert.ErrorContains(t, err, "certificate signed by unknown authority")

	mutual := redistest.Start(t, redistest.WithClientCerts())
	certs = mutual.Certs()
	withCert, err := redis.TLSFiles{CA: certs.CA, Cert: certs.ClientCert, Key: certs.ClientKey}.Config()
	require.NoError(t, err)
	roundTrip(t, open(t, mutual.URL(), redis.WithTLS(withCert)), "r1")
	caOnly, err = redis.TLSFiles{CA: certs.CA}.Config()
	require.NoError(t, err)
	// TLS 1.3 refuses a client without a certificate after the handshake,
	// at its first read: a call of one command mostly reads the refusal,
	// but may find the connection reset first, if the server closed it
	// before the command was written (seen on a loaded machine).
	_, err = open(t, mutual.URL()+"?max_retries=-1", redis.WithTLS(caOnly)).ReadInbox(t.Context(), "r1")
	require.Error(t, err, "no client certificate")
	assert.Regexp(t, "certificate required|connection reset by peer", err.Error(), "no client certificate")
}

// TestOpenBadURL checks that a URL Open cannot use gives an error that
// says what is wrong, without the password.
func TestOpenBadURL(t *testing.T) {
	tlsConfig, err := redis.TLSFiles{}.Config()
	require.NoError(t, err)
	for _, c := range []struct {
		url  string
		opts []redis.Option
		want string
	}{
		{url: "", want: "empty Redis URL"},
		{url: "localhost:6379", want: `Redis URL "localhost:6379" has no scheme`},
		{url: "http://u:secret@localhost", want: `unknown scheme "http"`},
		{url: "redis://u:secret@localhost:port/0", want: `redis URL redis://u:xxxxx@localhost:port/0: invalid port ":port" after host`},
		{url: "redis://localhost/0?bogus=1", want: "unexpected option: bogus"},
		{url: "redis://localhost/x", want: `invalid database number: "x"`},
		{url: "redis+cluster://", want: "redis+cluster URL names no address"},
		{url: "redis+cluster://u:secret@/", want: "redis+cluster URL names no address"},
		{url: "rediss+cluster://h1:7000,,h2:7001", want: `address "": want host:port`},
		{url: "redis+cluster://h1:7000,h2:99999", want: `address "h2:99999": want host:port`},
		{url: "redis+cluster://h1:7000/3", want: `path "/3": a Redis Cluster has only database 0`},
		{url: "redis+cluster://u:secret@h1:7000?db=3", want: "redis+cluster URL redis+cluster://u:xxxxx@h1:7000?db=3: unexpected option: db"},
		{url: "redis+sentinel://h1:26379", want: "redis+sentinel URL names no master"},
		{url: "redis+sentinel://h1:26379/main/0/1", want: `path "/main/0/1": want /master-name or /master-name/db`},
		{url: "redis+sentinel://h1:26379/main?master_name=other", want: "master's name is given twice"},
		{url: "redis://localhost:6379/0", opts: []redis.Option{redis.WithTLS(tlsConfig)}, want: "TLS settings for a redis:// URL"},
		{url: "redis+cluster://h1:7000", opts: []redis.Option{redis.WithTLS(tlsConfig)}, want: "use rediss://, rediss+cluster:// or rediss+sentinel://"},
	} {
		_, err := redis.Open(c.url, c.opts...)
		require.Error(t, err, "Open(%q)", c.url)
		assert.Contains(t, err.Error(), c.want, "Open(%q)", c.url)
		assert.True(t, strings.HasPrefix(err.Error(), "open redis store: "), "Open(%q): %v", c.url, err)
		assert.NotContains(t, err.Error(), "secret", "Open(%q)", c.url)
	}
}

// TestTLSFilesErrors checks that a TLS file that cannot be used gives an
// error naming it and what is wrong.
func TestTLSFilesErrors(t *testing.T) {
	certs := redistest.NewCerts(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not a certificate\n"), 0o600))
	missing := filepath.Join(dir, "missing.pem")
	for _, c := range []struct {
		files redis.TLSFiles
		want  string
	}{
		{redis.TLSFiles{CA: missing}, "TLS CA file: open " + missing + ": no such file or directory"},
		{redis.TLSFiles{CA: junk}, "TLS CA file " + junk + ": no PEM certificate in it"},
		{redis.TLSFiles{Cert: certs.ClientCert}, "TLS client certificate " + certs.ClientCert + " without its key"},
		{redis.TLSFiles{Key: certs.ClientKey}, "TLS client key " + certs.ClientKey + " without its certificate"},
		{redis.TLSFiles{Cert: missing, Key: certs.ClientKey}, "TLS client certificate " + missing + " and key " + certs.ClientKey + ": open " + missing},
		{redis.TLSFiles{Cert: junk, Key: certs.ClientKey}, "failed to find any PEM data in certificate input"},
		{redis.TLSFiles{Cert: certs.ClientCert, Key: junk}, "failed to find any PEM data in key input"},
		{redis.TLSFiles{Cert: certs.ClientCert, Key: certs.ServerKey}, "private key does not match public key"},
	} {
		_, err := c.files.Config()
		require.Error(t, err, "%+v", c.files)
		assert.Contains(t, err.Error(), c.want, "%+v", c.files)
	}
	cfg, err := redis.TLSFiles{CA: certs.CA, Cert: certs.ClientCert, Key: certs.ClientKey, ServerName: "redis.internal"}.Config()
	require.NoError(t, err)
	assert.NotNil(t, cfg.RootCAs)
	assert.Len(t, cfg.Certificates, 1)
	assert.Equal(t, "redis.internal", cfg.ServerName)
}

// TestOpenDoesNotConnect opens a store on an address where nothing
// listens: the error comes with the first call.
func TestOpenDoesNotConnect(t *testing.T) {
	t.Parallel()
	s := open(t, "redis+cluster://127.0.0.1:1?dial_timeout=100ms&max_retries=-1")
	_, err := s.GetRun(t.Context(), "r1")
	assert.Error(t, err)
	s = open(t, "redis://127.0.0.1:1/0?dial_timeout=100ms&max_retries=-1")
	start := time.Now()
	_, err = s.GetRun(t.Context(), "r1")
	assert.ErrorContains(t, err, "connection refused")
	assert.Less(t, time.Since(start), 5*time.Second)
}
