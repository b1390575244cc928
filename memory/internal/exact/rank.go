// Package exact searches vectors exhaustively: every vector of a
// namespace is scored against the query, by cosine similarity, and the
// best are kept. Both stores of package memory use it, so that they give
// the same scores, bit for bit, and break ties alike.
package exact

import (
	"math"
	"slices"
	"strings"

	"github.com/cairn-dev/cairn/memory"
)

// Ranker scores vectors against one query and keeps the best hits offered
// to it: at most the query's TopK, each matching its filter and scoring
// at least its MinScore, best first, ties in key order. V is what a hit
// carries, say an item or its position in an Index.
//
// A Ranker is not safe for concurrent use.
type Ranker[V any] struct {
	unit   []float64 // the query, scaled to length 1
	k      int
	min    float64
	filter map[string]string
	heap   []Ranked[V] // the worst kept hit first
}

// Ranked is a hit kept by a Ranker.
type Ranked[V any] struct {
	Score float64
	Key   string
	Value V
}

// NewRanker returns a Ranker for q, which ValidQuery accepted.
func NewRanker[V any](q memory.Query) *Ranker[V] {
	k := q.TopK
	if k == 0 {
		k = memory.DefaultTopK
	}
	return &Ranker[V]{unit: Unit(q.Vector), k: k, min: q.MinScore, filter: q.Filter, heap: make([]Ranked[V], 0, min(k, 64))}
}

// Dim is the length of the query's vector.
func (r *Ranker[V]) Dim() int { return len(r.unit) }

// Matches reports whether metadata has every entry of the query's filter.
func (r *Ranker[V]) Matches(metadata map[string]string) bool {
	for k, v := range r.filter {
		if got, ok := metadata[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Score is the cosine similarity of the query and v, whose InvNorm is
// inv: from -1 to 1, and 0 if either is a zero vector. v has the query's
// length.
func (r *Ranker[V]) Score(v []float32, inv float64) float64 {
	s := dot(r.unit, v) * inv
	return max(-1, min(1, s))
}

// Offer offers a hit whose metadata matched: it is kept if it scores at
// least MinScore and beats the worst of the TopK kept so far.
func (r *Ranker[V]) Offer(score float64, key string, value V) {
	if score < r.min {
		return
	}
	h := Ranked[V]{Score: score, Key: key, Value: value}
	if len(r.heap) < r.k {
		r.heap = append(r.heap, h)
		r.up(len(r.heap) - 1)
		return
	}
	if !better(h, r.heap[0]) {
		return
	}
	r.heap[0] = h
	r.down(0)
}

// Best returns the kept hits, best first, ties in key order. The Ranker
// is empty afterwards.
func (r *Ranker[V]) Best() []Ranked[V] {
	out := r.heap
	r.heap = nil
	slices.SortFunc(out, func(a, b Ranked[V]) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return 0
	})
	return out
}

// better reports whether a ranks before b: a higher score, or the same
// score and a smaller key.
func better[V any](a, b Ranked[V]) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return strings.Compare(a.Key, b.Key) < 0
}

// The heap keeps the worst kept hit at its root.

func (r *Ranker[V]) up(i int) {
	h := r.heap
	for i > 0 {
		p := (i - 1) / 2
		if !better(h[p], h[i]) {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (r *Ranker[V]) down(i int) {
	h := r.heap
	for {
		w := i
		if l := 2*i + 1; l < len(h) && better(h[w], h[l]) {
			w = l
		}
		if rt := 2*i + 2; rt < len(h) && better(h[w], h[rt]) {
			w = rt
		}
		if w == i {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}

// Unit returns v scaled to length 1, in float64; a zero vector stays
// zero.
func Unit(v []float32) []float64 {
	inv := InvNorm(v)
	u := make([]float64, len(v))
	for i, x := range v {
		u[i] = float64(x) * inv
	}
	return u
}

// InvNorm returns 1 over v's length, or 0 for a zero vector. It works in
// float64, where no float32's square overflows or vanishes.
func InvNorm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return 0
	}
	return 1 / math.Sqrt(s)
}

// dot is the dot product of a and b[:len(a)], summed in float64 with
// eight accumulators, which is faster than a plain float32 loop and
// overflows for no finite float32s.
func dot(a []float64, b []float32) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float64
	i := 0
	for ; i+8 <= len(a); i += 8 {
		aa, bb := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += aa[0] * float64(bb[0])
		s1 += aa[1] * float64(bb[1])
		s2 += aa[2] * float64(bb[2])
		s3 += aa[3] * float64(bb[3])
		s4 += aa[4] * float64(bb[4])
		s5 += aa[5] * float64(bb[5])
		s6 += aa[6] * float64(bb[6])
		s7 += aa[7] * float64(bb[7])
	}
	for ; i < len(a); i++ {
		s0 += a[i] * float64(b[i])
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}
