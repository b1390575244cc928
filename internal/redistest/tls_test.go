package redistest_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/redistest"
)

// ping connects to addr with cfg and pings, once.
func ping(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, TLSConfig: cfg, MaxRetries: -1, DialTimeout: 2 * time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// TestTLS starts a server that speaks TLS only and needs no client
// certificate: a client that trusts its authority gets in, with or without
// a certificate; one that trusts another authority, or speaks plain text,
// does not.
func TestTLS(t *testing.T) {
	srv := redistest.Start(t, redistest.WithTLS())
	require.True(t, strings.HasPrefix(srv.URL(), "rediss://127.0.0.1:"), "URL %q", srv.URL())
	require.NotNil(t, srv.Certs())
	require.NoError(t, srv.Client().Set(t.Context(), "k", "v", 0).Err(), "the harness's client")

	certs := srv.Certs()
	assert.NoError(t, ping(t, srv.Addr(), certs.ClientConfig(t, false)), "trusting the CA, no client certificate")
	other := redistest.NewCerts(t)
	err := ping(t, srv.Addr(), other.ClientConfig(t, false))
	assert.ErrorContains(t, err, "certificate signed by unknown authority", "trusting another CA")
	assert.Error(t, ping(t, srv.Addr(), nil), "plain text to a TLS port")
}

// TestClientCerts starts a server that requires a client certificate of
// its authority.
func TestClientCerts(t *testing.T) {
	srv := redistest.Start(t, redistest.WithClientCerts())
	certs := srv.Certs()
	require.NotNil(t, certs)
	assert.NoError(t, ping(t, srv.Addr(), certs.ClientConfig(t, true)), "with the client certificate")
	assert.Error(t, ping(t, srv.Addr(), certs.ClientConfig(t, false)), "without a client certificate")
	other := redistest.NewCerts(t)
	cfg := certs.ClientConfig(t, false)
	pair, err := tls.LoadX509KeyPair(other.ClientCert, other.ClientKey)
	require.NoError(t, err)
	cfg.Certificates = []tls.Certificate{pair}
	assert.Error(t, ping(t, srv.Addr(), cfg), "with a client certificate of another CA")
}

// TestClusterTLS starts a cluster whose masters speak TLS, to clients and
// to each other.
func TestClusterTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster test: starts three redis-servers and waits for the cluster to form (about 1-2 s); run without -short")
	}
	c := redistest.StartCluster(t, 3, redistest.WithClientCerts())
	require.NotNil(t, c.Certs())
	assert.True(t, strings.HasPrefix(c.URL(), "rediss+cluster://127.0.0.1:"), "URL %q", c.URL())
	assert.Equal(t, 2, strings.Count(c.URL(), ","), "URL %q: want three addresses", c.URL())
	client := c.Client()
	for _, key := range []string{"a", "b", "c", "d", "e", "f"} {
		require.NoError(t, client.Set(t.Context(), key, key, 0).Err())
	}
	for _, m := range c.Masters {
		n, err := m.Client().DBSize(t.Context()).Result()
		require.NoError(t, err)
		assert.Positive(t, n, "keys on %s", m.Addr())
	}
}
