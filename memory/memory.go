package memory

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-dev/cairn/providers"
)

// Memory is long-term memory: a Store searched by meaning through an
// Embedder, which turns texts into vectors. Both must be set. A Memory is
// safe for concurrent use if its Store and Embedder are, as their
// contracts require.
//
// Remember and Recall are plain calls with a context: they know nothing
// of durability. An agent runs each as an activity, keyed so that a retry
// of Remember puts the same item again, which Put makes harmless.
type Memory struct {
	Store    Store
	Embedder providers.Embedder
}

// Remember stores item, embedding its text first if item.Vector is nil,
// and returns the item it put: the same, with Vector filled in.
// CreatedAt and UpdatedAt are the store's to set: Store.Get reads them.
//
// The item is checked (ValidItem, but for the vector) before the embedder
// is called, so a bad item costs no embedding. The embedder must give one
// finite vector of 1 to MaxDimensions numbers: a wrong length is
// ErrDimension, a number that is not finite ErrInvalidItem (in Recall,
// ErrInvalidQuery), a wrong count of vectors an error that says so.
// Errors of the embedder are wrapped ("memory: embed: ...") and keep
// their kind: errors.Is with providers.ErrRateLimited, say, still holds,
// as does the retry meaning that providers.Classify gave them. Errors of
// the store are returned as they are.
func (m *Memory) Remember(ctx context.Context, item Item) (Item, error) {
	if item.Vector == nil {
		if err := validFields(item); err != nil {
			return Item{}, err
		}
		v, err := m.embed(ctx, item.Text, ErrInvalidItem)
		if err != nil {
			return Item{}, err
		}
		item.Vector = v
	}
	if err := m.Store.Put(ctx, item); err != nil {
		return Item{}, err
	}
	return item, nil
}

// Recall returns the items of q.Namespace closest in meaning to text: it
// embeds text into q.Vector and searches (Store.Search, whose contract
// says what q's fields do). The query is checked, but for its vector,
// before the embedder is called; text must be 1 to MaxTextBytes bytes.
// Errors are as Remember's.
func (m *Memory) Recall(ctx context.Context, text string, q Query) ([]Hit, error) {
	if err := validQueryFields(q); err != nil {
		return nil, err
	}
	if len(text) == 0 || len(text) > MaxTextBytes {
		return nil, fmt.Errorf("%w: text of %d bytes: want 1 to %d", ErrInvalidQuery, len(text), MaxTextBytes)
	}
	v, err := m.embed(ctx, text, ErrInvalidQuery)
	if err != nil {
		return nil, err
	}
	q.Vector = v
	return m.Store.Search(ctx, q)
}

// embed embeds one text and checks what the embedder returned; a number
// that is not finite wraps invalid.
func (m *Memory) embed(ctx context.Context, text string, invalid error) ([]float32, error) {
	if m.Embedder == nil {
		return nil, errors.New("memory: embed: no Embedder")
	}
	vs, err := m.Embedder.Embed(ctx, []string{text})
	if err != nil {
		return nil, fmt.Errorf("memory: embed: %w", err)
	}
	if len(vs) != 1 {
		return nil, fmt.Errorf("memory: embed: the embedder returned %d vectors for 1 text", len(vs))
	}
	v := vs[0]
	if len(v) == 0 || len(v) > MaxDimensions {
		return nil, fmt.Errorf("memory: embed: %w: the embedder returned a vector of %d dimensions: want 1 to %d", ErrDimension, len(v), MaxDimensions)
	}
	if err := checkVector(v); err != nil {
		return nil, fmt.Errorf("memory: embed: %w: the embedder returned a %w", invalid, err)
	}
	return v, nil
}
