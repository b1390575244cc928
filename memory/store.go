package memory

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Limits on what a Store keeps. They bound a store's memory and a
// prompt's size; an item past them is refused with ErrInvalidItem.
const (
	// MaxTextBytes is the largest Item.Text.
	MaxTextBytes = 16 << 10
	// MaxMetadata is the most metadata entries of an item; each key
	// and value is at most MaxMetadataBytes.
	MaxMetadata      = 32
	MaxMetadataBytes = 256
	// MaxDimensions is the longest vector.
	MaxDimensions = 8192
	// MaxTopK is the most hits a search returns.
	MaxTopK = 1000
)

// Errors of a Store. Callers branch on them with errors.Is; none of them
// is worth retrying as it is.
var (
	// ErrNotFound means no item has that namespace and key.
	ErrNotFound = errors.New("memory: not found")
	// ErrInvalidNamespace means a namespace is not well formed (see
	// ValidNamespace).
	ErrInvalidNamespace = errors.New("memory: invalid namespace")
	// ErrInvalidItem means an item breaks a limit: an empty or oversized
	// text or key, too much metadata, a vector that is empty, too long,
	// or not finite.
	ErrInvalidItem = errors.New("memory: invalid item")
	// ErrInvalidQuery means a search or a listing asks for what cannot
	// be given: a vector that is empty, too long or not finite, a TopK
	// outside 0 to MaxTopK, a filter past the metadata limits, a
	// MinScore that is NaN, a negative List limit.
	ErrInvalidQuery = errors.New("memory: invalid query")
	// ErrDimension means a vector's length differs from that of the
	// vectors already in its namespace: they come from another embedder.
	ErrDimension = errors.New("memory: vector dimension mismatch")
	// ErrCorrupt means what the store holds for an item does not decode;
	// the error names the item. Other items are unaffected.
	ErrCorrupt = errors.New("memory: corrupt item")
)

// Item is one memory: a text, the vector of its meaning, and metadata to
// filter by, under a key in a namespace.
type Item struct {
	// Namespace groups items, and is what a search looks in: "user/42",
	// "agent/support". See ValidNamespace.
	Namespace string `json:"namespace"`
	// Key names the item in its namespace: 1 to 256 bytes. Putting an
	// item with a key that exists replaces it.
	Key string `json:"key"`
	// Text is what is remembered, at most MaxTextBytes.
	Text string `json:"text"`
	// Vector is Text's embedding. Every vector of a namespace has the
	// same length.
	Vector []float32 `json:"vector,omitempty"`
	// Metadata is matched exactly by a search's filter.
	Metadata map[string]string `json:"metadata,omitempty"`
	// CreatedAt and UpdatedAt are set by the store.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Query is a search by meaning in one namespace.
type Query struct {
	Namespace string
	// Vector is the embedding of what is looked for; it has the
	// namespace's dimension.
	Vector []float32
	// TopK is the most hits to return, 1 to MaxTopK; 0 means 10.
	TopK int
	// Filter keeps the items whose metadata has every entry of it.
	Filter map[string]string
	// MinScore drops the hits that score below it.
	MinScore float64
}

// Hit is an item found by a search, with its score: the cosine similarity
// of its vector and the query's, from -1 to 1, higher is closer.
type Hit struct {
	Item  Item    `json:"item"`
	Score float64 `json:"score"`
}

// Store keeps items. Implementations live in subpackages (memory/memstore,
// memory/redis) and pass the conformance suite in memory/storetest.
//
// A Store is safe for concurrent use. Writes are idempotent: putting the
// same item twice leaves one item, which is what makes a retried write
// safe.
type Store interface {
	// Put creates or replaces the item of its namespace and key. It
	// fails with ErrInvalidNamespace, ErrInvalidItem (see ValidItem) or
	// ErrDimension, and then stores nothing. The dimension check and the
	// write are atomic: of two writers with vectors of different lengths
	// into an empty namespace, one fails. A replaced item keeps its
	// CreatedAt.
	Put(ctx context.Context, item Item) error
	// Get returns an item, or ErrNotFound. A key that ValidKey refuses
	// gives ErrInvalidItem; an item that does not decode, a
	// *CorruptError.
	Get(ctx context.Context, namespace, key string) (Item, error)
	// Delete removes an item. Deleting an item that does not exist is
	// not an error. Once a namespace has no items, it has no dimension:
	// the next Put sets it.
	Delete(ctx context.Context, namespace, key string) error
	// List returns the items of a namespace in key order (of the keys'
	// bytes), at most limit of them (0 means DefaultListLimit; a negative
	// limit is ErrInvalidQuery), starting after the key after ("" for
	// the first page). A store that meets an item it cannot decode
	// returns the items before it and a *CorruptError naming it; the next
	// page starts after its key.
	List(ctx context.Context, namespace, after string, limit int) ([]Item, error)
	// Search returns the items of q.Namespace closest to q.Vector, best
	// first (ties in key order), that match q.Filter and score at least
	// q.MinScore (so the zero Query drops negative scores: set MinScore
	// to -1 to keep them). A namespace with no items gives no hits,
	// whatever the vector's length; one with items of another length
	// gives ErrDimension. A query that ValidQuery refuses gives
	// ErrInvalidNamespace or ErrInvalidQuery. A zero vector, stored or
	// asked for, scores 0. A store may skip the items it cannot decode,
	// and must then say so in its documentation.
	Search(ctx context.Context, q Query) ([]Hit, error)
}

var namespacePattern = regexp.MustCompile(`^[A-Za-z0-9_.@:-]+(/[A-Za-z0-9_.@:-]+)*$`)

// ValidNamespace checks a namespace: 1 to 256 bytes, segments of letters,
// digits and "_.@:-" joined by "/". It wraps ErrInvalidNamespace.
func ValidNamespace(ns string) error {
	if len(ns) == 0 || len(ns) > 256 || !namespacePattern.MatchString(ns) {
		return fmt.Errorf("%w: %q (1 to 256 bytes: segments of letters, digits and _.@:- joined by /)", ErrInvalidNamespace, ns)
	}
	return nil
}
