package memstore_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/memstore"
)

// BenchmarkSearch searches 10,000 and 100,000 items (the latter skipped
// with -short) of 256 dimensions, random unit vectors, for their 10
// best; x-brute is the time of a search over a plain float32
// dot-product loop over the same vectors, measured in the same run.
// "filtered" keeps a third of the items by metadata.
func BenchmarkSearch(b *testing.B) {
	const dim = 256
	for _, n := range []int{10_000, 100_000} {
		b.Run("items="+strconv.Itoa(n), func(b *testing.B) {
			if n > 10_000 && testing.Short() {
				b.Skip("100,000 items; run without -short")
			}
			rng := rand.New(rand.NewPCG(uint64(n), 42))
			unit := func() []float32 {
				v := make([]float32, dim)
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
			s := memstore.New()
			vecs := make([][]float32, n)
			for i := range n {
				vecs[i] = unit()
				err := s.Put(b.Context(), memory.Item{Namespace: "bench", Key: fmt.Sprintf("memory-%07d", i),
					Text: "a memory", Vector: vecs[i], Metadata: map[string]string{"kind": []string{"fact", "preference", "event"}[i%3]}})
				if err != nil {
					b.Fatal(err)
				}
			}
			q := unit()
			brute := bruteTime(vecs, q)
			b.Logf("%d items: brute-force dot products %v", n, brute)
			for name, filter := range map[string]map[string]string{"all": nil, "filtered": {"kind": "fact"}} {
				b.Run(name, func(b *testing.B) {
					query := memory.Query{Namespace: "bench", Vector: q, TopK: 10, MinScore: -1, Filter: filter}
					for b.Loop() {
						hits, err := s.Search(b.Context(), query)
						if err != nil || len(hits) != 10 {
							b.Fatalf("Search: %d hits, %v", len(hits), err)
						}
					}
					b.ReportMetric(float64(b.Elapsed()/time.Duration(b.N))/float64(brute), "x-brute")
				})
			}
		})
	}
}

// bruteTime is the median time of a plain float32 dot-product loop over
// vecs: the least an exact search can cost.
func bruteTime(vecs [][]float32, q []float32) time.Duration {
	var runs []time.Duration
	var sink float32
	for range 7 {
		start := time.Now()
		best := float32(-2)
		for _, v := range vecs {
			var s float32
			for i, x := range v {
				s += x * q[i]
			}
			best = max(best, s)
		}
		sink += best
		runs = append(runs, time.Since(start))
	}
	_ = sink
	slices.Sort(runs)
	return runs[len(runs)/2]
}
