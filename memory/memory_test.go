package memory_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/memstore"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/hashembed"
)

// embedder is a providers.Embedder made of a func, counting its calls.
type embedder struct {
	calls atomic.Int64
	fn    func(texts []string) ([][]float32, error)
}

func (e *embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.calls.Add(1)
	return e.fn(texts)
}

func returns(vs [][]float32, err error) *embedder {
	return &embedder{fn: func([]string) ([][]float32, error) { return vs, err }}
}

func TestRememberRecall(t *testing.T) {
	m := &memory.Memory{Store: memstore.New(), Embedder: hashembed.New(0)}
	ctx := t.Context()
	for key, text := range map[string]string{
		"coffee": "The customer drinks coffee black, no sugar.",
		"city":   "The customer lives in Lyon.",
		"pet":    "Her cat is called Miso.",
	} {
		got, err := m.Remember(ctx, memory.Item{Namespace: "user/42", Key: key, Text: text})
		require.NoError(t, err)
		assert.Len(t, got.Vector, hashembed.DefaultDim, "Remember returns the item with its vector")
		stored, err := m.Store.Get(ctx, "user/42", key)
		require.NoError(t, err)
		assert.Equal(t, got.Vector, stored.Vector, "the vector stored is the one returned")
	}
	hits, err := m.Recall(ctx, "What coffee does the customer drink?", memory.Query{Namespace: "user/42", TopK: 2})
	require.NoError(t, err)
	require.NotEmpty(t, hits)
	assert.Equal(t, "coffee", hits[0].Item.Key)

	// A vector given is used as it is: no embedding.
	e := returns(nil, errors.New("must not be called"))
	m2 := &memory.Memory{Store: memstore.New(), Embedder: e}
	_, err = m2.Remember(ctx, memory.Item{Namespace: "ns", Key: "k", Text: "t", Vector: []float32{1, 2}})
	require.NoError(t, err)
	assert.Zero(t, e.calls.Load(), "embedder calls for an item with a vector")
}

// TestValidatesBeforeEmbedding checks that a bad item or query costs no
// embedding.
func TestValidatesBeforeEmbedding(t *testing.T) {
	e := returns([][]float32{{1, 2}}, nil)
	m := &memory.Memory{Store: memstore.New(), Embedder: e}
	ctx := t.Context()
	for name, it := range map[string]memory.Item{
		"namespace":     {Namespace: "bad namespace", Key: "k", Text: "t"},
		"empty key":     {Namespace: "ns", Text: "t"},
		"empty text":    {Namespace: "ns", Key: "k"},
		"text too long": {Namespace: "ns", Key: "k", Text: strings.Repeat("x", memory.MaxTextBytes+1)},
		"metadata":      {Namespace: "ns", Key: "k", Text: "t", Metadata: map[string]string{"k": strings.Repeat("v", memory.MaxMetadataBytes+1)}},
	} {
		_, err := m.Remember(ctx, it)
		assert.True(t, errors.Is(err, memory.ErrInvalidItem) || errors.Is(err, memory.ErrInvalidNamespace), "%s: %v", name, err)
	}
	for name, q := range map[string]memory.Query{
		"namespace": {Namespace: "", TopK: 1},
		"TopK":      {Namespace: "ns", TopK: memory.MaxTopK + 1},
		"MinScore":  {Namespace: "ns", MinScore: math.NaN()},
	} {
		_, err := m.Recall(ctx, "text", q)
		assert.True(t, errors.Is(err, memory.ErrInvalidQuery) || errors.Is(err, memory.ErrInvalidNamespace), "%s: %v", name, err)
	}
	_, err := m.Recall(ctx, "", memory.Query{Namespace: "ns"})
	assert.ErrorIs(t, err, memory.ErrInvalidQuery, "Recall of an empty text")
	assert.Zero(t, e.calls.Load(), "embedder calls for bad items and queries")
}

func TestEmbedderErrors(t *testing.T) {
	rateLimited := providers.Classify(&providers.Error{Kind: providers.ErrRateLimited, Provider: "p", RetryAfter: 2 * time.Second})
	badRequest := providers.Classify(&providers.Error{Kind: providers.ErrInvalidRequest, Provider: "p", Message: "bad input"})
	nan := float32(math.NaN())
	tests := []struct {
		name     string
		embedder *embedder
		is       []error // errors.Is must hold for each, in Remember
		recallIs []error // and in Recall, if they differ
		contains string
	}{
		{"rate limited", returns(nil, rateLimited), []error{providers.ErrRateLimited}, nil, "memory: embed: p: rate limited"},
		{"bad request", returns(nil, badRequest), []error{providers.ErrInvalidRequest}, nil, "memory: embed:"},
		{"no vector", returns([][]float32{}, nil), nil, nil, "returned 0 vectors for 1 text"},
		{"two vectors", returns([][]float32{{1}, {2}}, nil), nil, nil, "returned 2 vectors for 1 text"},
		{"empty vector", returns([][]float32{{}}, nil), []error{memory.ErrDimension}, nil, "0 dimensions"},
		{"vector too long", returns([][]float32{make([]float32, memory.MaxDimensions+1)}, nil), []error{memory.ErrDimension}, nil, "8193 dimensions"},
		{"NaN", returns([][]float32{{1, nan}}, nil), []error{memory.ErrInvalidItem}, []error{memory.ErrInvalidQuery}, "vector[1] is NaN"},
		{"wrong dimension for the namespace", returns([][]float32{{1, 2, 3}}, nil), []error{memory.ErrDimension}, nil, "2 dimensions, this one 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := memstore.New()
			require.NoError(t, store.Put(t.Context(), memory.Item{Namespace: "ns", Key: "first", Text: "t", Vector: []float32{1, 0}}))
			m := &memory.Memory{Store: store, Embedder: tt.embedder}
			_, err := m.Remember(t.Context(), memory.Item{Namespace: "ns", Key: "k", Text: "t"})
			require.Error(t, err)
			for _, target := range tt.is {
				assert.ErrorIs(t, err, target, "Remember")
			}
			assert.Contains(t, err.Error(), tt.contains, "Remember")
			_, err = store.Get(t.Context(), "ns", "k")
			assert.ErrorIs(t, err, memory.ErrNotFound, "an item whose embedding failed was stored")

			_, err = m.Recall(t.Context(), "t", memory.Query{Namespace: "ns"})
			require.Error(t, err)
			is := tt.is
			if tt.recallIs != nil {
				is = tt.recallIs
			}
			for _, target := range is {
				assert.ErrorIs(t, err, target, "Recall")
			}
			assert.Contains(t, err.Error(), tt.contains, "Recall")
		})
	}
	// The retry meaning that Classify gave survives the wrapping: the
	// classified errors themselves are in the chain, marks and all.
	for _, classified := range []error{rateLimited, badRequest} {
		m := &memory.Memory{Store: memstore.New(), Embedder: returns(nil, classified)}
		_, err := m.Remember(t.Context(), memory.Item{Namespace: "ns", Key: "k", Text: "t"})
		assert.ErrorIs(t, err, classified, "Remember")
		_, err = m.Recall(t.Context(), "t", memory.Query{Namespace: "ns"})
		assert.ErrorIs(t, err, classified, "Recall")
	}
	_, err := (&memory.Memory{Store: memstore.New(), Embedder: returns(nil, rateLimited)}).Remember(t.Context(), memory.Item{Namespace: "ns", Key: "k", Text: "t"})
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.True(t, pe.Retryable())
	assert.Equal(t, 2*time.Second, pe.RetryAfter)
}
