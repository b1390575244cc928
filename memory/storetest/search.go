package storetest

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/memory"
)

// tolerance is how far a store's score may be from the cosine computed
// here.
const tolerance = 1e-9

// cosine is the reference score, in float64.
func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa) / math.Sqrt(bb)
}

// reference searches items by brute force, as the contract says.
func reference(items []memory.Item, q memory.Query) []memory.Hit {
	var hits []memory.Hit
	for _, it := range items {
		match := true
		for k, v := range q.Filter {
			if got, ok := it.Metadata[k]; !ok || got != v {
				match = false
			}
		}
		if s := cosine(q.Vector, it.Vector); match && s >= q.MinScore {
			hits = append(hits, memory.Hit{Item: it, Score: s})
		}
	}
	slices.SortFunc(hits, func(a, b memory.Hit) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.Item.Key, b.Item.Key))
	})
	k := cmp.Or(q.TopK, memory.DefaultTopK)
	return hits[:min(k, len(hits))]
}

// checkHits checks a store's hits against the reference's: the same,
// but where scores within tolerance of each other (or of MinScore) leave
// the order or the cut open.
func checkHits(t *testing.T, items []memory.Item, q memory.Query, got []memory.Hit, msg string) {
	t.Helper()
	want := reference(items, q)
	byKey := map[string]memory.Item{}
	for _, it := range items {
		byKey[it.Key] = it
	}
	for i, h := range got {
		assert.GreaterOrEqual(t, h.Score, q.MinScore, "%s: hit %d %q scores below MinScore", msg, i, h.Item.Key)
		if i > 0 {
			prev := got[i-1]
			assert.True(t, prev.Score > h.Score || prev.Score == h.Score && prev.Item.Key < h.Item.Key,
				"%s: hit %d (%q, %v) ranks after hit %d (%q, %v): want best first, ties in key order", msg, i, h.Item.Key, h.Score, i-1, prev.Item.Key, prev.Score)
		}
		want, ok := byKey[h.Item.Key]
		if assert.True(t, ok, "%s: hit %q was never put", msg, h.Item.Key) {
			assertSame(t, want, h.Item, "%s: hit %q", msg, h.Item.Key)
			assert.InDelta(t, cosine(q.Vector, want.Vector), h.Score, tolerance, "%s: score of %q", msg, h.Item.Key)
		}
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 2*tolerance }
	if len(got) != len(want) {
		// Only a score at MinScore's edge may be in one and not the other.
		edge := want
		if len(got) > len(want) {
			edge = got
		}
		for _, h := range edge[min(len(got), len(want)):] {
			assert.True(t, near(h.Score, q.MinScore), "%s: %d hits; want %d (the reference's %v, got %v)", msg, len(got), len(want), keysOf(want), keysOf(got))
		}
	}
	for i := range min(len(got), len(want)) {
		if got[i].Item.Key != want[i].Item.Key {
			assert.True(t, near(got[i].Score, want[i].Score), "%s: hit %d is %q (%v); want %q (%v)", msg, i, got[i].Item.Key, got[i].Score, want[i].Item.Key, want[i].Score)
		}
	}
}

// testSearchReference searches several hundred random items with random
// queries and checks each answer against a brute-force search.
func testSearchReference(t *testing.T, s memory.Store) {
	const n, dim = 400, 8
	rng := rand.New(rand.NewPCG(7, 11))
	randVec := func() []float32 {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	colors, sizes := []string{"red", "green", "blue"}, []string{"s", "m", "l"}
	var items []memory.Item
	for i := range n {
		it := memory.Item{Namespace: "ns", Key: fmt.Sprintf("k%04d", rng.IntN(10000)*n+i), Text: fmt.Sprintf("item %d", i), Vector: randVec()}
		switch {
		case i%10 == 0 && i > 0: // the same vector as an earlier item: ties
			it.Vector = slices.Clone(items[rng.IntN(len(items))].Vector)
		case i%37 == 0: // a zero vector: scores 0
			it.Vector = make([]float32, dim)
		case i%41 == 0: // huge or tiny numbers, scaled from an earlier vector
			scale := float32(1e30)
			if i%2 == 0 {
				scale = 1e-30
			}
			it.Vector = slices.Clone(items[rng.IntN(len(items))].Vector)
			for j := range it.Vector {
				it.Vector[j] *= scale
			}
		}
		if i%5 != 0 {
			it.Metadata = map[string]string{"color": colors[rng.IntN(3)], "size": sizes[rng.IntN(3)]}
		}
		items = append(items, it)
	}
	for _, i := range rng.Perm(n) {
		put(t, s, items[i])
	}

	filters := []map[string]string{nil, {}, {"color": "red"}, {"color": "blue", "size": "m"}, {"size": "l"}, {"color": "purple"}, {"color": ""}}
	topKs := []int{0, 1, 3, 10, 37, n, memory.MaxTopK}
	minScores := []float64{-1, -0.5, 0, 0, 0.3, 0.8, 1, 1.5}
	for i := range 60 {
		q := memory.Query{Namespace: "ns", Vector: randVec(), Filter: filters[rng.IntN(len(filters))],
			TopK: topKs[rng.IntN(len(topKs))], MinScore: minScores[rng.IntN(len(minScores))]}
		switch i % 6 {
		case 1: // an item's own vector: it scores 1, its duplicates tie
			q.Vector = slices.Clone(items[rng.IntN(n)].Vector)
		case 2: // a zero query: everything scores 0
			q.Vector = make([]float32, dim)
		}
		checkHits(t, items, q, search(t, s, q), fmt.Sprintf("query %d (TopK %d, filter %v, MinScore %v)", i, q.TopK, q.Filter, q.MinScore))
	}
}

func testSearchTies(t *testing.T, s memory.Store) {
	for _, k := range []string{"e", "c", "a", "d", "b"} {
		put(t, s, item("ns", k, "tie "+k, 3, 4))
	}
	put(t, s, item("ns", "z", "better", 1, 0), item("ns", "0", "worse", -1, 0))
	hits := search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, 0}, MinScore: -1})
	assert.Equal(t, []string{"z", "a", "b", "c", "d", "e", "0"}, keysOf(hits), "equal scores in key order")
	for _, h := range hits[2:6] {
		assert.Equal(t, hits[1].Score, h.Score, "scores of equal vectors must be equal")
	}
	hits = search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, 0}, TopK: 3})
	assert.Equal(t, []string{"z", "a", "b"}, keysOf(hits), "TopK cuts a tie in key order")
}

func testSearchDefaults(t *testing.T, s memory.Store) {
	for i := range 15 {
		put(t, s, item("ns", fmt.Sprintf("k%02d", i), "t", 1, float32(i)))
	}
	put(t, s, item("ns", "neg", "opposite", -1, -1), item("ns", "zero", "zero vector", 0, 0))
	hits := search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, 1}})
	assert.Len(t, hits, memory.DefaultTopK, "hits with TopK 0")

	hits = search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, -1}, TopK: 100})
	assert.Contains(t, keysOf(hits), "zero", "a zero vector scores 0, which MinScore 0 keeps")
	assert.NotContains(t, keysOf(hits), "k14", "MinScore 0 drops negative scores")
	for _, h := range hits {
		if h.Item.Key == "zero" {
			assert.Zero(t, h.Score, "score of a zero vector")
		}
	}
	hits = search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, -1}, TopK: 100, MinScore: -1})
	assert.Len(t, hits, 17, "hits with MinScore -1: all")
	hits = search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, 1}, TopK: 100, MinScore: 0.999999})
	assert.Equal(t, []string{"k01"}, keysOf(hits), "hits with MinScore near 1")

	hits = search(t, s, memory.Query{Namespace: "ns", Vector: []float32{0, 0}, TopK: 2})
	require.Len(t, hits, 2, "a zero query: every score is 0")
	assert.Equal(t, []string{"k00", "k01"}, keysOf(hits), "a zero query: every score is 0, ties in key order")
}

// testSearchSeesWrites searches after each kind of write: a store that
// caches must never answer from what it cached before.
func testSearchSeesWrites(t *testing.T, s memory.Store) {
	q := memory.Query{Namespace: "ns", Vector: []float32{1, 0}, MinScore: -1}
	assert.Empty(t, search(t, s, q), "Search before any Put")
	put(t, s, item("ns", "a", "A", 1, 0), item("ns", "b", "B", 0, 1))
	hits := search(t, s, q)
	require.Equal(t, []string{"a", "b"}, keysOf(hits))

	put(t, s, item("ns", "a", "A moved", -1, 0))
	hits = search(t, s, q)
	require.Equal(t, []string{"b", "a"}, keysOf(hits), "after a replace")
	assert.Equal(t, "A moved", hits[1].Item.Text, "after a replace")
	assert.InDelta(t, -1, hits[1].Score, tolerance, "after a replace")

	put(t, s, item("ns", "c", "C", 1, 0.1))
	assert.Equal(t, []string{"c", "b", "a"}, keysOf(search(t, s, q)), "after an add")
	require.NoError(t, s.Delete(t.Context(), "ns", "b"))
	assert.Equal(t, []string{"c", "a"}, keysOf(search(t, s, q)), "after a delete")

	for i := range 50 { // more writes than a cache may follow one by one
		put(t, s, item("ns", fmt.Sprintf("m%02d", i), "many", 0, 1))
	}
	assert.Len(t, search(t, s, memory.Query{Namespace: "ns", Vector: []float32{0, 1}, TopK: 100, MinScore: 0.5}), 50, "after many puts")

	for _, it := range listAll(t, s, "ns") {
		require.NoError(t, s.Delete(t.Context(), "ns", it.Key))
	}
	assert.Empty(t, search(t, s, q), "after deleting everything")
	put(t, s, item("ns", "d", "D", 1, 2, 3))
	hits = search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, 2, 3}})
	assert.Equal(t, []string{"d"}, keysOf(hits), "after emptying and refilling with another dimension")
}
