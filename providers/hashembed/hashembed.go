// Package hashembed is a providers.Embedder that needs nothing: no model,
// no network, no key, no state. It hashes a text's words into a vector
// (feature hashing), so texts that share words are close and texts that
// share none are not. It knows nothing of meaning: "car" and "automobile"
// are as far apart as "car" and "tax". Use it in tests, examples and the
// zero-setup quickstart; use a real embedding model (providers/openai's
// Embedder, say) for real recall.
//
// A text's features are its words, lower-cased (maximal runs of Unicode
// letters and digits), each counting 1, and its pairs of adjacent words,
// each counting 1/2, so that word order counts a little. Each feature is
// hashed with 64-bit FNV-1a: the hash modulo the dimension picks a
// coordinate, its top bit the sign added there. The vector is then scaled
// to length 1. The same text gives the same vector on every machine and
// in every version of this package that keeps this paragraph.
package hashembed

import (
	"context"
	"math"
	"strings"
	"unicode"

	"github.com/cairn-dev/cairn/providers"
)

var _ providers.Embedder = (*Embedder)(nil)

// DefaultDim is the dimension New gives for a dim of 0 or less.
const DefaultDim = 256

// Embedder embeds texts by feature hashing. It is safe for concurrent
// use.
type Embedder struct {
	dim int
}

// New returns an Embedder of vectors of dim numbers (DefaultDim if dim is
// 0 or less). More dimensions make unrelated texts collide less; memory's
// stores take at most 8192 (memory.MaxDimensions).
func New(dim int) *Embedder {
	if dim <= 0 {
		dim = DefaultDim
	}
	return &Embedder{dim: dim}
}

// Dim is the length of the vectors.
func (e *Embedder) Dim() int { return e.dim }

// Embed implements providers.Embedder. A text without a word gives the
// zero vector, which scores 0 against every vector. Its only error is
// ctx's.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i, text := range texts {
		out[i] = e.embed(text)
	}
	return out, nil
}

func (e *Embedder) embed(text string) []float32 {
	acc := make([]float64, e.dim)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	for i, w := range words {
		e.add(acc, fnv(offset, w), 1)
		if i > 0 {
			h := fnv(fnv(offset, words[i-1]), "\x00")
			e.add(acc, fnv(h, w), 0.5)
		}
	}
	var norm float64
	for _, x := range acc {
		norm += x * x
	}
	v := make([]float32, e.dim)
	if norm == 0 {
		return v
	}
	inv := 1 / math.Sqrt(norm)
	for i, x := range acc {
		v[i] = float32(x * inv)
	}
	return v
}

// add adds weight to the coordinate a feature's hash picks, with the sign
// of its top bit.
func (e *Embedder) add(acc []float64, h uint64, weight float64) {
	if h>>63 == 1 {
		weight = -weight
	}
	acc[h%uint64(e.dim)] += weight
}

// FNV-1a, 64 bits.
const (
	offset = 14695981039346656037
	prime  = 1099511628211
)

// fnv continues the FNV-1a hash h over s.
func fnv(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}
