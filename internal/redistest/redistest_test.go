package redistest_test

import (
	"fmt"
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

// TestCluster starts a cluster of three masters and checks that keys are
// spread over all of them, and that a script's keys must share a slot.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster test: starts three redis-servers and waits for the cluster to form (about 1-2 s); run without -short")
	}
	ctx := t.Context()
	c := redistest.StartCluster(t, 3)
	require.Len(t, c.Masters, 3)
	client := c.Client()
	for i := range 100 {
		require.NoError(t, client.Set(ctx, fmt.Sprintf("key-%d", i), i, 0).Err())
	}
	total := int64(0)
	for _, m := range c.Masters {
		n, err := m.Client().DBSize(ctx).Result()
		require.NoError(t, err)
		assert.Positive(t, n, "keys on %s", m.Addr())
		total += n
	}
	assert.EqualValues(t, 100, total, "keys on all masters")
	got, err := client.Get(ctx, "key-42").Result()
	require.NoError(t, err)
	assert.Equal(t, "42", got)

	err = client.Eval(ctx, "return redis.call('mget', KEYS[1], KEYS[2])", []string{"key-1", "key-2"}).Err()
	assert.ErrorContains(t, err, "CROSSSLOT", "a script over keys of two slots")
	err = client.Eval(ctx, "return redis.call('mget', KEYS[1], KEYS[2])", []string{"{t}1", "{t}2"}).Err()
	assert.NoError(t, err, "a script over keys of one hash tag")
}

// TestSentinel starts a Sentinel that monitors a server: it names it.
func TestSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, master, "mymaster")
	addr, err := sentinel.Client().Do(t.Context(), "sentinel", "get-master-addr-by-name", "mymaster").StringSlice()
	require.NoError(t, err)
	assert.Equal(t, master.Addr(), strings.Join(addr, ":"))
}
