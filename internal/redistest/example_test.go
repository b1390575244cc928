package redistest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/redistest"
)

// A test starts its own server, uses it through Client or URL, and can
// kill and restart it; the server is stopped when the test ends.
func ExampleStart() {
	_ = func(t *testing.T) {
		srv := redistest.Start(t, redistest.WithAOF())
		require.NoError(t, srv.Client().Set(t.Context(), "greeting", "hello", 0).Err())
		srv.Kill()
		srv.Restart() // the AOF brings "greeting" back
	}
}

// A test that must run as on Redis Cluster starts three masters and talks
// to them through a cluster client, which follows each key to its slot's
// master.
func ExampleStartCluster() {
	_ = func(t *testing.T) {
		cluster := redistest.StartCluster(t, 3)
		require.NoError(t, cluster.Client().Set(t.Context(), "{user:42}:name", "Ada", 0).Err())
	}
}

// A test of TLS starts a server that requires a client certificate and
// reaches it with the files the harness made: the authority to trust, the
// client's certificate and key.
func ExampleWithClientCerts() {
	_ = func(t *testing.T) {
		srv := redistest.Start(t, redistest.WithClientCerts())
		certs := srv.Certs()
		_ = []string{certs.CA, certs.ClientCert, certs.ClientKey} // e.g. for cairn --tls-ca, --tls-cert, --tls-key
		require.NoError(t, srv.Client().Ping(t.Context()).Err())  // Client trusts the authority and shows the certificate
	}
}

// A Redis benchmark takes its server from ForBench, so that it can run on
// the server CAIRN_BENCH_REDIS_URL names, and writes under the target's
// prefix only; ForBench deletes those keys when the benchmark ends.
func ExampleForBench() {
	_ = func(b *testing.B) {
		target := redistest.ForBench(b)
		client := target.Client()
		for b.Loop() {
			require.NoError(b, client.Set(b.Context(), target.Prefix+":{bench}:k", "v", 0).Err())
		}
	}
}
