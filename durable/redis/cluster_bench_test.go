package redis_test

import (
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// BenchmarkClusterThroughput measures the throughput of 1,000 concurrent
// runs of 10 no-op steps, one worker, on a Redis Cluster of 3 masters,
// and in the same run on a single server, each store with its default
// options; each iteration runs the scenario once on each, one after the
// other, so that the machine's noise falls on both. It reports:
//
//	steps/s         on the cluster
//	single-steps/s  on the single server
//	x-single        the first divided by the second
//
// Run it with: go test ./durable/redis -run '^$' -bench Cluster -benchtime 3x
func BenchmarkClusterThroughput(b *testing.B) {
	const runs, steps = 1000, 10

	single, _, target := benchStore(b)
	runWorker(b, newWorker(single))
	singleClient := separateClient(b, target)

	cluster := redistest.StartCluster(b, 3)
	runWorker(b, newWorker(clusterStore(b, cluster)))
	clusterClient := durable.NewClient(clusterStore(b, cluster), durable.ClientOptions{})

	var onSingle, onCluster time.Duration
	for i := range b.N {
		onSingle += concurrentRuns(b, singleClient, fmt.Sprintf("s-%d", i), runs, steps)
		onCluster += concurrentRuns(b, clusterClient, fmt.Sprintf("c-%d", i), runs, steps)
	}
	total := float64(runs * steps * b.N)
	b.ReportMetric(total/onCluster.Seconds(), "steps/s")
	b.ReportMetric(total/onSingle.Seconds(), "single-steps/s")
	b.ReportMetric(onSingle.Seconds()/onCluster.Seconds(), "x-single")
}

// clusterStore returns a store with the default options on a cluster
// client of its own, as a process of its own would have.
func clusterStore(b *testing.B, c *redistest.Cluster) *redis.Store {
	client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs()})
	store := redis.New(client)
	b.Cleanup(func() { client.Close(); store.Close() })
	return store
}
