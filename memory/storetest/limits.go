package storetest

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/memory"
)

var badNamespaces = []string{"", "/", "a/", "/a", "a//b", "a b", "a{b}", "{a}", "ü", "a\x00", "a\nb", "*", strings.Repeat("n", 257)}

func testInvalidNamespace(t *testing.T, s memory.Store) {
	ctx := t.Context()
	for _, ns := range badNamespaces {
		assert.ErrorIs(t, s.Put(ctx, item(ns, "k", "t", 1)), memory.ErrInvalidNamespace, "Put in %q", ns)
		_, err := s.Get(ctx, ns, "k")
		assert.ErrorIs(t, err, memory.ErrInvalidNamespace, "Get in %q", ns)
		assert.ErrorIs(t, s.Delete(ctx, ns, "k"), memory.ErrInvalidNamespace, "Delete in %q", ns)
		_, err = s.List(ctx, ns, "", 10)
		assert.ErrorIs(t, err, memory.ErrInvalidNamespace, "List of %q", ns)
		_, err = s.Search(ctx, memory.Query{Namespace: ns, Vector: []float32{1}})
		assert.ErrorIs(t, err, memory.ErrInvalidNamespace, "Search in %q", ns)
	}
	for _, ns := range []string{"a", "user/42", "A-Z_a.z@0:9/x-y", "a/b/c/d", strings.Repeat("n", 256)} {
		put(t, s, item(ns, "k", "t", 1))
		assert.Equal(t, "t", get(t, s, ns, "k").Text, "Get in %q", ns)
	}
}

func testIsolation(t *testing.T, s memory.Store) {
	// Namespaces that are prefixes of each other, or differ in case.
	spaces := []string{"a", "a/b", "a:b", "A", "ab", "b"}
	for i, ns := range spaces {
		vec := make([]float32, 2+i%2) // two dimensions here, three there
		vec[0] = 1
		put(t, s, item(ns, "k", "in "+ns, vec...), item(ns, "k-"+ns, "only in "+ns, vec...))
	}
	for i, ns := range spaces {
		assert.Equal(t, "in "+ns, get(t, s, ns, "k").Text, "Get of k in %q", ns)
		assert.Equal(t, []string{"k", "k-" + ns}, keysOf(listAll(t, s, ns)), "List of %q", ns)
		vec := make([]float32, 2+i%2)
		vec[0] = 1
		hits := search(t, s, memory.Query{Namespace: ns, Vector: vec})
		assert.Equal(t, []string{"k", "k-" + ns}, keysOf(hits), "Search in %q", ns)
	}
	require.NoError(t, s.Delete(t.Context(), "a", "k"))
	require.NoError(t, s.Delete(t.Context(), "a", "k-a"))
	for _, ns := range spaces[1:] {
		assert.Equal(t, "in "+ns, get(t, s, ns, "k").Text, "Get of k in %q after emptying \"a\"", ns)
	}
	put(t, s, item("a", "k", "a with 5 dimensions", 1, 2, 3, 4, 5))
	assert.Len(t, get(t, s, "a/b", "k").Vector, 3, "a/b's item after a's dimension changed")
}

func testItemLimits(t *testing.T, s memory.Store) {
	full := map[string]string{}
	for i := range memory.MaxMetadata {
		k := fmt.Sprintf("%03d", i)
		full[k+strings.Repeat("k", memory.MaxMetadataBytes-3)] = strings.Repeat("v", memory.MaxMetadataBytes)
	}
	tooMany := map[string]string{}
	for i := range memory.MaxMetadata + 1 {
		tooMany[fmt.Sprint(i)] = "v"
	}
	longVec := make([]float32, memory.MaxDimensions)
	for i := range longVec {
		longVec[i] = float32(i%7) - 3
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	withMeta := func(m map[string]string) memory.Item {
		it := item("ns", "k", "t", 1)
		it.Metadata = m
		return it
	}
	tests := []struct {
		name string
		item memory.Item
		ok   bool
	}{
		{"longest key", item("ns", strings.Repeat("k", memory.MaxKeyBytes), "t", 1), true},
		{"longest text", item("ns", "k", strings.Repeat("t", memory.MaxTextBytes), 1), true},
		{"most metadata", withMeta(full), true},
		{"longest vector", item("lv", "k", "t", longVec...), true},
		{"empty key", item("ns", "", "t", 1), false},
		{"key too long", item("ns", strings.Repeat("k", memory.MaxKeyBytes+1), "t", 1), false},
		{"key not UTF-8", item("ns", "k\xff", "t", 1), false},
		{"empty text", item("ns", "k", "", 1), false},
		{"text too long", item("ns", "k", strings.Repeat("t", memory.MaxTextBytes+1), 1), false},
		{"text not UTF-8", item("ns", "k", "caf\xe9", 1), false},
		{"too much metadata", withMeta(tooMany), false},
		{"metadata key too long", withMeta(map[string]string{strings.Repeat("k", memory.MaxMetadataBytes+1): "v"}), false},
		{"metadata value too long", withMeta(map[string]string{"k": strings.Repeat("v", memory.MaxMetadataBytes+1)}), false},
		{"metadata not UTF-8", withMeta(map[string]string{"k": "\xc3"}), false},
		{"no vector", item("ns", "k", "t"), false},
		{"empty vector", memory.Item{Namespace: "ns", Key: "k", Text: "t", Vector: []float32{}}, false},
		{"vector too long", item("ns", "k", "t", append(longVec, 1)...), false},
		{"NaN", item("ns", "k", "t", 1, nan), false},
		{"+Inf", item("ns", "k", "t", inf, 1), false},
		{"-Inf", item("ns", "k", "t", 1, -inf), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Put(t.Context(), tt.item)
			if tt.ok {
				require.NoError(t, err)
				assertSame(t, tt.item, get(t, s, tt.item.Namespace, tt.item.Key))
				require.NoError(t, s.Delete(t.Context(), tt.item.Namespace, tt.item.Key))
				return
			}
			assert.ErrorIs(t, err, memory.ErrInvalidItem)
			assert.Empty(t, listAll(t, s, tt.item.Namespace), "items after a refused Put")
		})
	}
	for _, key := range []string{"", strings.Repeat("k", memory.MaxKeyBytes+1), "\xff"} {
		_, err := s.Get(t.Context(), "ns", key)
		assert.ErrorIs(t, err, memory.ErrInvalidItem, "Get of key %.20q", key)
		assert.ErrorIs(t, s.Delete(t.Context(), "ns", key), memory.ErrInvalidItem, "Delete of key %.20q", key)
	}
}

func testQueryLimits(t *testing.T, s memory.Store) {
	put(t, s, item("ns", "k", "t", 1, 2))
	tooMany := map[string]string{}
	for i := range memory.MaxMetadata + 1 {
		tooMany[fmt.Sprint(i)] = "v"
	}
	nan := float32(math.NaN())
	for name, q := range map[string]memory.Query{
		"negative TopK":     {Namespace: "ns", Vector: []float32{1, 2}, TopK: -1},
		"TopK too big":      {Namespace: "ns", Vector: []float32{1, 2}, TopK: memory.MaxTopK + 1},
		"no vector":         {Namespace: "ns"},
		"empty vector":      {Namespace: "ns", Vector: []float32{}},
		"NaN in vector":     {Namespace: "ns", Vector: []float32{nan, 1}},
		"Inf in vector":     {Namespace: "ns", Vector: []float32{float32(math.Inf(-1)), 1}},
		"vector too long":   {Namespace: "ns", Vector: make([]float32, memory.MaxDimensions+1)},
		"NaN MinScore":      {Namespace: "ns", Vector: []float32{1, 2}, MinScore: math.NaN()},
		"filter too big":    {Namespace: "ns", Vector: []float32{1, 2}, Filter: tooMany},
		"filter too long":   {Namespace: "ns", Vector: []float32{1, 2}, Filter: map[string]string{"k": long(memory.MaxMetadataBytes + 1)}},
		"empty namespace's": {Namespace: "empty", Vector: []float32{nan}},
	} {
		_, err := s.Search(t.Context(), q)
		assert.ErrorIs(t, err, memory.ErrInvalidQuery, name)
	}
	hits := search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, 2}, TopK: memory.MaxTopK})
	assert.Len(t, hits, 1, "Search with TopK MaxTopK")
}

func testDimensionPut(t *testing.T, s memory.Store) {
	put(t, s, item("ns", "a", "A", 1, 2, 3))
	err := s.Put(t.Context(), item("ns", "b", "B", 1, 2, 3, 4))
	assert.ErrorIs(t, err, memory.ErrDimension, "Put of 4 dimensions among 3")
	_, err = s.Get(t.Context(), "ns", "b")
	assert.ErrorIs(t, err, memory.ErrNotFound, "Get of an item refused for its dimension")
	err = s.Put(t.Context(), item("ns", "a", "A", 1, 2))
	assert.ErrorIs(t, err, memory.ErrDimension, "Put of 2 dimensions replacing the only item, of 3")
	assert.Len(t, get(t, s, "ns", "a").Vector, 3, "the item a refused replace left")
	put(t, s, item("other", "b", "B", 1, 2, 3, 4))

	require.NoError(t, s.Delete(t.Context(), "ns", "a"))
	put(t, s, item("ns", "c", "C", 1, 2, 3, 4, 5))
	assert.Len(t, get(t, s, "ns", "c").Vector, 5, "a namespace emptied takes any dimension")
}

func testDimensionSearch(t *testing.T, s memory.Store) {
	put(t, s, item("ns", "a", "A", 1, 2, 3))
	for _, n := range []int{1, 2, 4, memory.MaxDimensions} {
		vec := make([]float32, n)
		vec[0] = 1
		_, err := s.Search(t.Context(), memory.Query{Namespace: "ns", Vector: vec})
		assert.ErrorIs(t, err, memory.ErrDimension, "Search with %d dimensions among 3", n)
		hits, err := s.Search(t.Context(), memory.Query{Namespace: "empty", Vector: vec})
		assert.NoError(t, err, "Search with %d dimensions in a namespace without items", n)
		assert.Empty(t, hits, "Search with %d dimensions in a namespace without items", n)
	}
}

// testDimensionRace puts vectors of two lengths into empty namespaces
// from many goroutines at once: in each namespace, every vector stored
// has the same length, and every Put of the other length failed.
func testDimensionRace(t *testing.T, s memory.Store) {
	const writers, each = 8, 5
	for round := range 4 {
		ns := fmt.Sprintf("race/%d", round)
		var wg sync.WaitGroup
		errs := make([][]error, writers)
		for w := range writers {
			wg.Go(func() {
				vec := make([]float32, 2+w%2)
				vec[0] = 1
				for i := range each {
					errs[w] = append(errs[w], s.Put(t.Context(), item(ns, fmt.Sprintf("w%d-%d", w, i), "t", vec...)))
				}
			})
		}
		wg.Wait()
		items := listAll(t, s, ns)
		require.NotEmpty(t, items, "round %d: nothing stored", round)
		dim := len(items[0].Vector)
		stored := 0
		for w := range writers {
			for i, err := range errs[w] {
				if 2+w%2 == dim {
					assert.NoError(t, err, "round %d: Put w%d-%d of the winning dimension %d", round, w, i, dim)
					stored++
				} else {
					assert.True(t, errors.Is(err, memory.ErrDimension), "round %d: Put w%d-%d of %d dimensions among %d: %v", round, w, i, 2+w%2, dim, err)
				}
			}
		}
		assert.Len(t, items, stored, "round %d: items stored", round)
		for _, it := range items {
			assert.Len(t, it.Vector, dim, "round %d: item %q", round, it.Key)
		}
	}
}
