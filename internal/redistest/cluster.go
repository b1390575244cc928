package redistest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// slots is the number of Redis Cluster hash slots.
const slots = 16384

// Cluster is a Redis Cluster of masters, without replicas, started by
// StartCluster. Its methods are safe for concurrent use.
type Cluster struct {
	t testing.TB
	// Masters are the cluster's servers, each serving an equal share of
	// the slots, in slot order.
	Masters []*Server

	mu     sync.Mutex
	client *goredis.ClusterClient
}

// StartCluster starts a Redis Cluster of n masters (3 if n < 1), each a
// redis-server as Start starts it, in cluster mode with a cluster bus on a
// free loopback port of its own. It gives each master an equal share of
// the slots, joins them, and returns when every master reports the
// cluster ok with all of them and all slots known. The servers are
// stopped when the test ends. With WithTLS, the servers share one
// authority and talk to each other over TLS too.
func StartCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	if n < 1 {
		n = 3
	}
	c := &Cluster{t: t}
	var cfg config
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.tls != "" && cfg.certs == nil {
		opts = append(opts, withCerts(NewCerts(t)))
	}
	opts = append(opts, func(c *config) { c.cluster = true })
	for range n {
		c.Masters = append(c.Masters, Start(t, opts...))
	}
	ctx := context.Background()
	for i, m := range c.Masters {
		first, last := i*slots/n, (i+1)*slots/n-1
		if err := m.Client().Do(ctx, "cluster", "addslotsrange", first, last).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER ADDSLOTSRANGE %d %d on %s: %v", first, last, m.Addr(), err)
		}
		// Distinct epochs, as redis-cli --cluster create sets them, so
		// the masters need not settle a collision.
		if err := m.Client().Do(ctx, "cluster", "set-config-epoch", i+1).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER SET-CONFIG-EPOCH on %s: %v", m.Addr(), err)
		}
	}
	for _, m := range c.Masters[1:] {
		if err := c.Masters[0].Client().Do(ctx, "cluster", "meet", "127.0.0.1", m.port, m.bus).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER MEET %s: %v", m.Addr(), err)
		}
	}
	want := []string{"cluster_state:ok", fmt.Sprintf("cluster_slots_assigned:%d", slots), fmt.Sprintf("cluster_known_nodes:%d", n)}
	deadline := time.Now().Add(startTimeout)
	for _, m := range c.Masters {
		for {
			info, err := m.Client().ClusterInfo(ctx).Result()
			if err == nil && containsAll(info, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster not ready on %s within %v: %v\n%s", m.Addr(), startTimeout, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// URL returns a redis+cluster:// URL with every master's address, or a
// rediss+cluster:// one with TLS, as durable/redis's Open takes it.
func (c *Cluster) URL() string {
	scheme := "redis+cluster://"
	if c.Masters[0].certs != nil {
		scheme = "rediss+cluster://"
	}
	return scheme + strings.Join(c.Addrs(), ",")
}

// Certs returns the TLS files the masters share, or nil without TLS.
func (c *Cluster) Certs() *Certs { return c.Masters[0].certs }

// Addrs returns the masters' addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Masters))
	for i, m := range c.Masters {
		addrs[i] = m.Addr()
	}
	return addrs
}

// Client returns a cluster client of the cluster, the same one on every
// call. It is closed when the test ends.
func (c *Cluster) Client() *goredis.ClusterClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		c.client = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs(), TLSConfig: c.Masters[0].TLSConfig()})
		c.t.Cleanup(func() { _ = c.client.Close() })
	}
	return c.client
}
