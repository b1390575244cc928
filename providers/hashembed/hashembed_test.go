package hashembed_test

import (
	"context"
	"hash/fnv"
	"math"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/providers/hashembed"
)

func embed(t *testing.T, e *hashembed.Embedder, texts ...string) [][]float32 {
	t.Helper()
	vs, err := e.Embed(t.Context(), texts)
	require.NoError(t, err)
	require.Len(t, vs, len(texts))
	return vs
}

func cos(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s // both have length 1
}

func TestVectors(t *testing.T) {
	assert.Equal(t, hashembed.DefaultDim, hashembed.New(0).Dim(), "New(0)")
	assert.Equal(t, hashembed.DefaultDim, hashembed.New(-3).Dim(), "New(-3)")
	e := hashembed.New(64)
	vs := embed(t, e, "Hello, world!", "hello world", "HELLO   WORLD...", "", "?!", "Grüße aus Köln 2024")
	for i, v := range vs {
		require.Len(t, v, 64, "vector %d", i)
		var norm float64
		for _, x := range v {
			require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0), "vector %d", i)
			norm += float64(x) * float64(x)
		}
		if i == 3 || i == 4 {
			assert.Zero(t, norm, "a text without words gives the zero vector")
		} else {
			assert.InDelta(t, 1, norm, 1e-6, "vector %d has length 1", i)
		}
	}
	assert.Equal(t, vs[0], vs[1], "case and punctuation do not count")
	assert.Equal(t, vs[0], vs[2], "case and punctuation do not count")
	assert.Equal(t, vs[0], embed(t, hashembed.New(64), "hello world")[0], "another Embedder gives the same vector")
	assert.NotEqual(t, vs[0], embed(t, e, "world hello")[0], "word order counts a little")
	assert.Greater(t, cos(vs[0], embed(t, e, "world hello")[0]), 0.7, "word order counts only a little")

	none, err := e.Embed(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}

// reference is the package doc's algorithm, written again with hash/fnv.
func reference(text string, dim int) []float32 {
	acc := make([]float64, dim)
	add := func(feature string, weight float64) {
		h := fnv.New64a()
		h.Write([]byte(feature))
		sum := h.Sum64()
		if sum>>63 == 1 {
			weight = -weight
		}
		acc[sum%uint64(dim)] += weight
	}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for i, w := range words {
		add(w, 1)
		if i > 0 {
			add(words[i-1]+"\x00"+w, 0.5)
		}
	}
	var norm float64
	for _, x := range acc {
		norm += x * x
	}
	v := make([]float32, dim)
	for i, x := range acc {
		if norm > 0 {
			v[i] = float32(x / math.Sqrt(norm))
		}
	}
	return v
}

// TestStable checks the vectors against the documented algorithm, and
// pins one: a change of the hashing would make every vector stored
// before it incomparable with new ones.
func TestStable(t *testing.T) {
	for _, text := range []string{"The quick brown fox", "a a a b", "Ünïcödé wörds, 123 and 4.5", "", "one"} {
		for _, dim := range []int{1, 7, 256, 1536} {
			got := embed(t, hashembed.New(dim), text)[0]
			want := reference(text, dim)
			require.Len(t, got, dim)
			for i := range want {
				assert.InDelta(t, want[i], got[i], 1e-7, "%q, dim %d, [%d]", text, dim, i)
			}
		}
	}
	got := embed(t, hashembed.New(8), "The quick brown fox")[0]
	want := []float32{0.2085144, 0, 0, -0.2085144, 0.8340576, 0, -0.2085144, -0.4170288}
	assert.Equal(t, want, got)
}

func TestRelatedTextsAreCloser(t *testing.T) {
	e := hashembed.New(0)
	tests := []struct{ query, related, unrelated string }{
		{"Which coffee does the customer drink?", "The customer drinks coffee black, no sugar.", "The invoice is due on Friday."},
		{"pizza margherita order", "Order A-7: two pizza margherita, one calzone.", "Refund approved for the broken lamp."},
		{"deploy to production", "Production deploys run every Tuesday.", "Her cat is called Miso."},
	}
	for _, tt := range tests {
		vs := embed(t, e, tt.query, tt.related, tt.unrelated)
		assert.Greater(t, cos(vs[0], vs[1]), cos(vs[0], vs[2]), "%q: %q should be closer than %q", tt.query, tt.related, tt.unrelated)
	}
}

func TestLongText(t *testing.T) {
	v := embed(t, hashembed.New(0), strings.Repeat("word ", 100_000))[0]
	assert.Len(t, v, hashembed.DefaultDim)
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := hashembed.New(0).Embed(ctx, []string{"x"})
	assert.ErrorIs(t, err, context.Canceled)
}
