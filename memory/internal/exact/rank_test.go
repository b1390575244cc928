package exact

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cairn-dev/cairn/memory"
)

// TestRankerKeepsTheBest offers random scores, many of them equal, and
// compares what the Ranker keeps with a sort of all of them.
func TestRankerKeepsTheBest(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for round := range 200 {
		k := 1 + rng.IntN(20)
		minScore := []float64{-1, 0, 0.5}[round%3]
		r := NewRanker[int](memory.Query{Vector: []float32{1}, TopK: k, MinScore: minScore})
		var all []Ranked[int]
		for i := range rng.IntN(100) {
			score := float64(rng.IntN(9)-4) / 4 // -1 to 1 in quarters: many ties
			key := fmt.Sprintf("k%02d", rng.IntN(100))
			r.Offer(score, key, i)
			if score >= minScore {
				all = append(all, Ranked[int]{score, key, i})
			}
		}
		slices.SortStableFunc(all, func(a, b Ranked[int]) int {
			return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.Key, b.Key))
		})
		got := r.Best()
		want := all[:min(k, len(all))]
		assert.Equal(t, len(want), len(got), "round %d: hits", round)
		for i := range min(len(got), len(want)) {
			// Equal score and key may keep either value.
			assert.Equal(t, want[i].Score, got[i].Score, "round %d: hit %d", round, i)
			assert.Equal(t, want[i].Key, got[i].Key, "round %d: hit %d", round, i)
		}
	}
}

func TestScore(t *testing.T) {
	tests := []struct {
		name string
		q, v []float32
		want float64
	}{
		{"same", []float32{1, 2, 3}, []float32{1, 2, 3}, 1},
		{"opposite", []float32{1, 2, 3}, []float32{-1, -2, -3}, -1},
		{"orthogonal", []float32{1, 0}, []float32{0, 5}, 0},
		{"scaled up", []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, []float32{3e37, 6e37, 9e37, 12e37, 15e37, 18e37, 21e37, 24e37, 27e37}, 1},
		{"scaled down", []float32{1, 2}, []float32{1e-40, 2e-40}, 1},
		{"zero vector", []float32{1, 2}, []float32{0, 0}, 0},
		{"zero query", []float32{0, 0}, []float32{1, 2}, 0},
	}
	for _, tt := range tests {
		r := NewRanker[int](memory.Query{Vector: tt.q})
		got := r.Score(tt.v, InvNorm(tt.v))
		assert.False(t, math.IsNaN(got) || math.IsInf(got, 0), "%s: %v", tt.name, got)
		assert.InDelta(t, tt.want, got, 1e-6, tt.name)
		assert.LessOrEqual(t, math.Abs(got), 1.0, "%s: a score past ±1", tt.name)
	}
}
