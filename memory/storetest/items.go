package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/memory"
)

func testPutGet(t *testing.T, s memory.Store) {
	want := memory.Item{Namespace: "user/42", Key: "coffee", Text: "Drinks coffee black, no sugar.",
		Vector: []float32{0.5, -1.25, 3e-8, 1e30}, Metadata: map[string]string{"kind": "preference", "source": "chat"}}
	put(t, s, want, item("user/42", "tea", "Dislikes tea.", 1, 2, 3, 4))
	assertSame(t, want, get(t, s, "user/42", "coffee"))

	_, err := s.Get(t.Context(), "user/42", "juice")
	assert.ErrorIs(t, err, memory.ErrNotFound, "Get of a key never put")
	_, err = s.Get(t.Context(), "user/43", "coffee")
	assert.ErrorIs(t, err, memory.ErrNotFound, "Get in a namespace never used")

	odd := item("user/42", "日本語 key/with:odd{chars}\x00", "unicode ✓", 1, 1, 1, 1)
	put(t, s, odd)
	assertSame(t, odd, get(t, s, odd.Namespace, odd.Key), "a key with unicode, braces and a NUL")
}

func testReplace(t *testing.T, s memory.Store) {
	put(t, s, memory.Item{Namespace: "ns", Key: "k", Text: "old", Vector: []float32{1, 0}, Metadata: map[string]string{"a": "1", "b": "2"}})
	first := get(t, s, "ns", "k")
	want := memory.Item{Namespace: "ns", Key: "k", Text: "new", Vector: []float32{0, 1}, Metadata: map[string]string{"c": "3"}}
	put(t, s, want)
	got := get(t, s, "ns", "k")
	assertSame(t, want, got, "the replacing item, all of it: old metadata entries are gone")
	assert.True(t, got.CreatedAt.Equal(first.CreatedAt), "CreatedAt %v after a replace; want the first put's %v", got.CreatedAt, first.CreatedAt)
	assert.False(t, got.UpdatedAt.Before(first.UpdatedAt), "UpdatedAt went back from %v to %v", first.UpdatedAt, got.UpdatedAt)

	put(t, s, item("ns", "k", "no metadata", 0, 1))
	assert.Empty(t, get(t, s, "ns", "k").Metadata, "metadata after a replace without any")
	assert.Len(t, listAll(t, s, "ns"), 1, "items after replaces")
}

func testIdempotentPut(t *testing.T, s memory.Store) {
	it := memory.Item{Namespace: "ns", Key: "k", Text: "same", Vector: []float32{1, 2, 3}, Metadata: map[string]string{"m": "v"}}
	put(t, s, it)
	first := get(t, s, "ns", "k")
	put(t, s, it, it, it)
	items := listAll(t, s, "ns")
	require.Len(t, items, 1, "items after putting the same item four times")
	assertSame(t, it, items[0])
	assert.True(t, items[0].CreatedAt.Equal(first.CreatedAt), "CreatedAt changed by repeated puts")
	hits := search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, 2, 3}})
	require.Len(t, hits, 1, "hits after putting the same item four times")
	assert.InDelta(t, 1, hits[0].Score, 1e-9, "score of a vector against itself")
}

func testTimestamps(t *testing.T, s memory.Store) {
	start := time.Now()
	it := item("ns", "k", "t", 1)
	it.CreatedAt = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	it.UpdatedAt = it.CreatedAt
	put(t, s, it)
	got := get(t, s, "ns", "k")
	end := time.Now()
	for name, ts := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt} {
		assert.False(t, ts.Before(start.Add(-time.Second)) || ts.After(end.Add(time.Second)),
			"%s %v: want the store's time, between %v and %v, not the caller's", name, ts, start, end)
	}
	assert.False(t, got.UpdatedAt.Before(got.CreatedAt), "UpdatedAt %v before CreatedAt %v", got.UpdatedAt, got.CreatedAt)
	listed := listAll(t, s, "ns")
	require.Len(t, listed, 1)
	assert.True(t, listed[0].CreatedAt.Equal(got.CreatedAt) && listed[0].UpdatedAt.Equal(got.UpdatedAt), "List's timestamps differ from Get's")
	hits := search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1}})
	require.Len(t, hits, 1)
	assert.True(t, hits[0].Item.CreatedAt.Equal(got.CreatedAt) && hits[0].Item.UpdatedAt.Equal(got.UpdatedAt), "Search's timestamps differ from Get's")
}

func testCopiesItems(t *testing.T, s memory.Store) {
	vec := []float32{1, 2, 3}
	meta := map[string]string{"k": "v"}
	put(t, s, memory.Item{Namespace: "ns", Key: "k", Text: "t", Vector: vec, Metadata: meta})
	vec[0], meta["k"] = 99, "changed"
	want := memory.Item{Namespace: "ns", Key: "k", Text: "t", Vector: []float32{1, 2, 3}, Metadata: map[string]string{"k": "v"}}
	assertSame(t, want, get(t, s, "ns", "k"), "after changing the put item's vector and metadata")

	got := get(t, s, "ns", "k")
	got.Vector[1], got.Metadata["k"] = 99, "changed"
	listed := listAll(t, s, "ns")
	require.Len(t, listed, 1)
	listed[0].Vector[2], listed[0].Metadata["x"] = 99, "added"
	hits := search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, 2, 3}})
	require.Len(t, hits, 1)
	assertSame(t, want, hits[0].Item, "after changing what Get and List returned")
	hits[0].Item.Vector[0], hits[0].Item.Metadata["k"] = 99, "changed"
	assertSame(t, want, get(t, s, "ns", "k"), "after changing what Search returned")
}

func testDelete(t *testing.T, s memory.Store) {
	put(t, s, item("ns", "a", "A", 1, 0), item("ns", "b", "B", 0, 1))
	require.NoError(t, s.Delete(t.Context(), "ns", "a"))
	_, err := s.Get(t.Context(), "ns", "a")
	assert.ErrorIs(t, err, memory.ErrNotFound, "Get after Delete")
	assert.Equal(t, []string{"b"}, keysOf(listAll(t, s, "ns")), "List after Delete")
	assert.Equal(t, []string{"b"}, keysOf(search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, 0}, MinScore: -1})), "Search after Delete")

	assert.NoError(t, s.Delete(t.Context(), "ns", "a"), "Delete of a deleted item")
	assert.NoError(t, s.Delete(t.Context(), "ns", "never"), "Delete of an item never put")
	assert.NoError(t, s.Delete(t.Context(), "unused", "k"), "Delete in a namespace never used")
	assert.Equal(t, []string{"b"}, keysOf(listAll(t, s, "ns")), "List after Deletes of absent items")

	require.NoError(t, s.Delete(t.Context(), "ns", "b"))
	assert.Empty(t, listAll(t, s, "ns"), "List of a namespace emptied")
	assert.Empty(t, search(t, s, memory.Query{Namespace: "ns", Vector: []float32{1, 0}, MinScore: -1}), "Search of a namespace emptied")
	put(t, s, item("ns", "a", "A again", 1, 0))
	assert.Equal(t, "A again", get(t, s, "ns", "a").Text, "an item put again after its Delete")
}

// oddKeys are keys whose byte order differs from other orders: case,
// multi-byte runes, prefixes, control bytes, digits.
var oddKeys = []string{"a", "A", "b", "B", "ab", "a/b", "a b", "a\x00", "a\x7f", "é", "e", "z", "Z", "日本", "日", "10", "9", "09", "~", "-", "{x}", "x}", strings.Repeat("k", 256)}

func testListPages(t *testing.T, s memory.Store) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := slices.Clone(oddKeys)
	for i := range 230 {
		keys = append(keys, fmt.Sprintf("key-%d", rng.IntN(1_000_000)*1000+i))
	}
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for i, k := range keys {
		put(t, s, memory.Item{Namespace: "ns", Key: k, Text: "text of " + k, Vector: []float32{float32(i), 1},
			Metadata: map[string]string{"i": fmt.Sprint(i)}})
	}
	put(t, s, item("other", "a0", "another namespace", 1, 1))
	want := slices.Clone(keys)
	slices.Sort(want) // byte order

	for _, limit := range []int{1, 7, 100, len(keys) - 1, len(keys), 1000} {
		var got []string
		after := ""
		for range len(keys) + 2 {
			page, err := s.List(t.Context(), "ns", after, limit)
			require.NoError(t, err, "List(after %q, limit %d)", after, limit)
			require.LessOrEqual(t, len(page), limit, "List(after %q, limit %d)", after, limit)
			got = append(got, keysOf(page)...)
			if len(page) < limit {
				break
			}
			after = page[len(page)-1].Key
		}
		assert.Equal(t, want, got, "keys listed in pages of %d", limit)
	}

	all := listAll(t, s, "ns")
	require.Len(t, all, len(keys))
	for _, it := range all {
		i := slices.Index(keys, it.Key)
		assertSame(t, memory.Item{Namespace: "ns", Key: it.Key, Text: "text of " + it.Key, Vector: []float32{float32(i), 1},
			Metadata: map[string]string{"i": fmt.Sprint(i)}}, it, "listed item %q", it.Key)
	}

	// after need not be a key: the page starts at the first key above it.
	page, err := s.List(t.Context(), "ns", "a\x01", 3)
	require.NoError(t, err)
	i, _ := slices.BinarySearch(want, "a\x01")
	assert.Equal(t, want[i:i+3], keysOf(page), "List after a key that is not there")
	page, err = s.List(t.Context(), "ns", want[len(want)-1], 10)
	require.NoError(t, err)
	assert.Empty(t, page, "List after the last key")
	page, err = s.List(t.Context(), "ns", "\xff", 10)
	require.NoError(t, err)
	assert.Empty(t, page, "List after every key")
}

func testListLimits(t *testing.T, s memory.Store) {
	for i := range 150 {
		put(t, s, item("ns", fmt.Sprintf("k%03d", i), "t", 1))
	}
	page, err := s.List(t.Context(), "ns", "", 0)
	require.NoError(t, err)
	assert.Len(t, page, memory.DefaultListLimit, "List with limit 0")
	_, err = s.List(t.Context(), "ns", "", -1)
	assert.ErrorIs(t, err, memory.ErrInvalidQuery, "List with a negative limit")
	page, err = s.List(t.Context(), "empty", "", 10)
	require.NoError(t, err, "List of a namespace never used")
	assert.Empty(t, page, "List of a namespace never used")
}

func testCanceledContext(t *testing.T, s memory.Store) {
	put(t, s, item("ns", "k", "t", 1, 2))
	ctx := canceled(t)
	assert.ErrorIs(t, s.Put(ctx, item("ns", "k2", "t", 1, 2)), context.Canceled, "Put")
	_, err := s.Get(ctx, "ns", "k")
	assert.ErrorIs(t, err, context.Canceled, "Get")
	assert.ErrorIs(t, s.Delete(ctx, "ns", "k"), context.Canceled, "Delete")
	_, err = s.List(ctx, "ns", "", 10)
	assert.ErrorIs(t, err, context.Canceled, "List")
	_, err = s.Search(ctx, memory.Query{Namespace: "ns", Vector: []float32{1, 2}})
	assert.ErrorIs(t, err, context.Canceled, "Search")
	assert.Equal(t, []string{"k"}, keysOf(listAll(t, s, "ns")), "items after calls with a canceled context")
}
