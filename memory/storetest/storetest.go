// Package storetest is the conformance suite of memory.Store: a store is
// done when it passes Run, as a file system is when it passes
// testing/fstest.TestFS.
//
// Where memory.Store leaves a choice open, the suite holds stores to
// these readings:
//
//   - Limits are inclusive: a key of 256 bytes, a text of
//     memory.MaxTextBytes, memory.MaxMetadata entries of
//     memory.MaxMetadataBytes each and a vector of memory.MaxDimensions
//     are stored; one byte, entry or number more is memory.ErrInvalidItem.
//   - Get and Delete with a key that memory.ValidKey refuses give
//     memory.ErrInvalidItem.
//   - A namespace's dimension is that of its items while it has any, even
//     when a Put replaces its only item: that Put needs the same length.
//   - CreatedAt and UpdatedAt are the store's clock, whatever the caller
//     set; UpdatedAt never goes back, CreatedAt survives a replace.
//   - A search's scores are the cosine similarity within 1e-9, and equal
//     vectors score exactly alike (so ties are broken by key, as the
//     contract says). Vectors that differ only in scale score alike,
//     within 1e-9.
//   - What a store returns is the caller's: changing it, or changing an
//     item after putting it, changes nothing stored.
//   - A canceled context makes every method fail with an error that
//     wraps the context's.
//
// It never meets corrupt items: a store that can hold them tests them on
// its own.
package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/memory"
)

// Run runs the conformance suite against the stores that newStore
// returns. newStore is called once per subtest and must return an empty
// store; it may register cleanups with t.
func Run(t *testing.T, newStore func(t *testing.T) memory.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s memory.Store)
	}{
		{"PutGet", testPutGet},
		{"Replace", testReplace},
		{"IdempotentPut", testIdempotentPut},
		{"Timestamps", testTimestamps},
		{"CopiesItems", testCopiesItems},
		{"Delete", testDelete},
		{"List/Pages", testListPages},
		{"List/Limits", testListLimits},
		{"Namespace/Invalid", testInvalidNamespace},
		{"Namespace/Isolation", testIsolation},
		{"Limits/Item", testItemLimits},
		{"Limits/Query", testQueryLimits},
		{"Dimension/Put", testDimensionPut},
		{"Dimension/Search", testDimensionSearch},
		{"Dimension/Race", testDimensionRace},
		{"Search/Reference", testSearchReference},
		{"Search/Ties", testSearchTies},
		{"Search/Defaults", testSearchDefaults},
		{"Search/SeesWrites", testSearchSeesWrites},
		{"Concurrent", testConcurrent},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// item builds an item.
func item(ns, key, text string, vec ...float32) memory.Item {
	return memory.Item{Namespace: ns, Key: key, Text: text, Vector: vec}
}

// put puts items, which must be accepted.
func put(t *testing.T, s memory.Store, items ...memory.Item) {
	t.Helper()
	for _, it := range items {
		require.NoError(t, s.Put(t.Context(), it), "Put(%q, %q)", it.Namespace, it.Key)
	}
}

// get gets an item, which must be there.
func get(t *testing.T, s memory.Store, ns, key string) memory.Item {
	t.Helper()
	got, err := s.Get(t.Context(), ns, key)
	require.NoError(t, err, "Get(%q, %q)", ns, key)
	return got
}

// listAll lists a whole namespace, a page of 100 at a time.
func listAll(t *testing.T, s memory.Store, ns string) []memory.Item {
	t.Helper()
	var all []memory.Item
	after := ""
	for {
		page, err := s.List(t.Context(), ns, after, 100)
		require.NoError(t, err, "List(%q, %q)", ns, after)
		all = append(all, page...)
		if len(page) < 100 {
			return all
		}
		after = page[len(page)-1].Key
	}
}

// search searches, which must succeed.
func search(t *testing.T, s memory.Store, q memory.Query) []memory.Hit {
	t.Helper()
	hits, err := s.Search(t.Context(), q)
	require.NoError(t, err, "Search(%+v)", q)
	return hits
}

// keysOf returns the keys of items or hits.
func keysOf[T memory.Item | memory.Hit](xs []T) []string {
	keys := make([]string, len(xs))
	for i, x := range xs {
		switch x := any(x).(type) {
		case memory.Item:
			keys[i] = x.Key
		case memory.Hit:
			keys[i] = x.Item.Key
		}
	}
	return keys
}

// assertSame checks that got is want as stored: the same but for the
// timestamps, which the store sets.
func assertSame(t *testing.T, want, got memory.Item, msgAndArgs ...any) {
	t.Helper()
	if len(want.Metadata) == 0 {
		want.Metadata = nil
	}
	if len(got.Metadata) == 0 {
		got.Metadata = nil
	}
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
	assert.Equal(t, want, got, msgAndArgs...)
}

// canceled returns a context that is done.
func canceled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// long returns a string of n bytes.
func long(n int) string { return strings.Repeat("x", n) }
