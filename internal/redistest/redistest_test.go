package redistest_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/redistest"
)

func TestStartKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis restart test: kills and restarts an AOF redis-server, waiting out the client's retries (about 2 s); run without -short")
	}
	ctx := t.Context()
	srv := redistest.Start(t, redistest.WithAOF())
	require.True(t, strings.HasPrefix(srv.URL(), "redis://127.0.0.1:"), "URL %q; want a free loopback port", srv.URL())
	require.False(t, strings.HasSuffix(srv.Addr(), ":6379"), "Addr %q; want a free loopback port", srv.Addr())
	c := srv.Client()
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	srv.Kill()
	require.Error(t, c.Ping(ctx).Err(), "PING answered after Kill")
	srv.Restart()
	got, err := c.Get(ctx, "k").Result()
	require.NoError(t, err, "GET after Restart with AOF")
	assert.Equal(t, "v", got, "GET after Restart with AOF")
}

func TestWithoutAOFStartsEmpty(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	c := srv.Client()
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	srv.Restart()
	n, err := c.Exists(ctx, "k").Result()
	require.NoError(t, err, "EXISTS after Restart without AOF")
	assert.Zero(t, n, "EXISTS after Restart without AOF")
}
