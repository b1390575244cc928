package redis_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/redis"
)

const benchDim = 256

// benchItems returns n items with random unit vectors of benchDim
// numbers, a short text and two metadata entries, as long-term memories
// might have.
func benchItems(n int) []memory.Item {
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	items := make([]memory.Item, n)
	for i := range items {
		items[i] = memory.Item{Namespace: "bench", Key: fmt.Sprintf("memory-%07d", i),
			Text:     fmt.Sprintf("Memory %d: the customer mentioned an order, a preference or a date.", i),
			Vector:   unitVector(rng),
			Metadata: map[string]string{"kind": []string{"fact", "preference", "event"}[i%3], "source": "chat"}}
	}
	return items
}

func unitVector(rng *rand.Rand) []float32 {
	v := make([]float32, benchDim)
	var norm float64
	for i := range v {
		x := rng.NormFloat64()
		v[i], norm = float32(x), norm+x*x
	}
	for i := range v {
		v[i] /= float32(math.Sqrt(norm))
	}
	return v
}

// load puts items with a few goroutines.
func load(b testing.TB, s memory.Store, items []memory.Item) {
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(items); i += workers {
				if err := s.Put(b.Context(), items[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// pingTime is the median of a few runs of 1000 PINGs: one round trip.
func pingTime(b *testing.B, client goredis.UniversalClient) time.Duration {
	var runs []time.Duration
	for range 5 {
		start := time.Now()
		for range 1000 {
			if err := client.Ping(b.Context()).Err(); err != nil {
				b.Fatal(err)
			}
		}
		runs = append(runs, time.Since(start)/1000)
	}
	return median(runs)
}

// bruteTime is the median time of a plain float32 dot-product loop over
// the items' vectors: the least an exact search can cost.
func bruteTime(items []memory.Item, q []float32) time.Duration {
	var runs []time.Duration
	var sink float32
	for range 7 {
		start := time.Now()
		best := float32(-2)
		for _, it := range items {
			var s float32
			for i, x := range it.Vector {
				s += x * q[i]
			}
			best = max(best, s)
		}
		sink += best
		runs = append(runs, time.Since(start))
	}
	_ = sink
	return median(runs)
}

func median(ds []time.Duration) time.Duration {
	for i := range ds { // insertion sort: a handful
		for j := i; j > 0 && ds[j] < ds[j-1]; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
	return ds[len(ds)/2]
}

// BenchmarkSearch searches 10,000 and 100,000 items (the latter skipped
// with -short) of 256 dimensions for their 10 best, against two
// baselines measured in the same run: x-rtt is the time of a search over
// one raw Redis round trip (PING), x-brute over a plain dot-product loop
// over the same vectors in Go.
//
//   - cached: nothing written since the last search (the cache is
//     checked with one round trip);
//   - after-write: a Put, then a Search that reads it (incremental
//     refresh), each iteration;
//   - cold: a new Store each iteration, which reads the whole namespace;
//   - no-cache: CacheBytes < 0, each search reads the whole namespace.
func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run("items="+strconv.Itoa(n), func(b *testing.B) {
			if n > 10_000 && testing.Short() {
				b.Skip("100,000 items take a while to load; run without -short")
			}
			srv := redistest.Start(b)
			client := srv.Client()
			items := benchItems(n)
			load(b, redis.New(client, redis.Options{}), items)
			q := unitVector(rand.New(rand.NewPCG(1, 2)))
			rtt := pingTime(b, client)
			brute := bruteTime(items, q)
			b.Logf("%d items: PING %v, brute-force dot products %v", n, rtt, brute)
			report := func(b *testing.B) {
				perOp := b.Elapsed() / time.Duration(b.N)
				b.ReportMetric(float64(perOp)/float64(rtt), "x-rtt")
				b.ReportMetric(float64(perOp)/float64(brute), "x-brute")
			}
			query := memory.Query{Namespace: "bench", Vector: q, TopK: 10, MinScore: -1}
			search := func(b *testing.B, s *redis.Store) {
				hits, err := s.Search(b.Context(), query)
				if err != nil || len(hits) != 10 {
					b.Fatalf("Search: %d hits, %v", len(hits), err)
				}
			}

			b.Run("cached", func(b *testing.B) {
				s := redis.New(client, redis.Options{})
				search(b, s)
				for b.Loop() {
					search(b, s)
				}
				report(b)
			})
			b.Run("after-write", func(b *testing.B) {
				s := redis.New(client, redis.Options{})
				search(b, s)
				i := 0
				for b.Loop() {
					it := items[i%len(items)]
					it.Text += " (again)"
					if err := s.Put(b.Context(), it); err != nil {
						b.Fatal(err)
					}
					search(b, s)
					i++
				}
				report(b)
			})
			b.Run("cold", func(b *testing.B) {
				for b.Loop() {
					search(b, redis.New(client, redis.Options{}))
				}
				report(b)
			})
			b.Run("no-cache", func(b *testing.B) {
				s := redis.New(client, redis.Options{CacheBytes: -1})
				for b.Loop() {
					search(b, s)
				}
				report(b)
			})
		})
	}
}

// BenchmarkBytesPerItem loads items of 256 dimensions, with a text of
// about 70 bytes and two metadata entries, into an empty server, and
// reports Redis's memory per item: used_memory's growth (B/item), and
// MEMORY USAGE of the items hash (items-B/item) and of the key index
// (index-B/item). The vector alone is 1,024 bytes.
func BenchmarkBytesPerItem(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run("items="+strconv.Itoa(n), func(b *testing.B) {
			if n > 10_000 && testing.Short() {
				b.Skip("100,000 items take a while to load; run without -short")
			}
			srv := redistest.Start(b)
			client := srv.Client()
			before := usedMemory(b, client)
			s := redis.New(client, redis.Options{})
			load(b, s, benchItems(n))
			after := usedMemory(b, client)
			usage := func(suffix string) float64 {
				v, err := client.MemoryUsage(b.Context(), redis.DefaultPrefix+":{bench}:"+suffix, 0).Result()
				if err != nil {
					b.Fatal(err)
				}
				return float64(v)
			}
			items, index := usage("items"), usage("keys")
			for b.Loop() {
				if err := client.HLen(b.Context(), redis.DefaultPrefix+":{bench}:items").Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(after-before)/float64(n), "B/item")
			b.ReportMetric(items/float64(n), "items-B/item")
			b.ReportMetric(index/float64(n), "index-B/item")
		})
	}
}

func usedMemory(b *testing.B, client *goredis.Client) int64 {
	info, err := client.Info(b.Context(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("INFO memory without used_memory")
	return 0
}
