package redis_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/redis"
	"github.com/cairn-dev/cairn/memory/storetest"
)

// TestConformance runs the store suite on one server, with a fresh key
// prefix (so an empty store) for each subtest: with the search cache, with
// a cache so small that it keeps almost nothing, and without the cache.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	for name, opts := range map[string]redis.Options{
		"Cache":      {},
		"SmallCache": {CacheBytes: 4 << 10, ChangeLog: 4},
		"NoCache":    {CacheBytes: -1},
	} {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) memory.Store {
				opts := opts
				opts.Prefix = fmt.Sprintf("suite%d", n.Add(1))
				return redis.New(srv.Client(), opts)
			})
		})
	}
}

// TestClusterConformance runs the store suite through a cluster client on
// a Redis Cluster of three masters, which refuses a script whose keys are
// in different slots.
func TestClusterConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster test: starts three masters (about 2 s) and runs the whole suite again through a cluster client; TestConformance covers the store under -short; run without -short")
	}
	cluster := redistest.StartCluster(t, 3)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) memory.Store {
		return redis.New(cluster.Client(), redis.Options{Prefix: fmt.Sprintf("cluster%d", n.Add(1))})
	})
}
