package exact

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cairn-dev/cairn/memory"
)

// Index holds the items of one namespace in memory for exact search: the
// vectors one after another in one slice, for the scan's sake, and the
// rest of each item beside them.
//
// An Index is not safe for concurrent use: its owner locks it. It copies
// what it is given and what it returns.
type Index struct {
	dim   int       // 0 while empty
	vecs  []float32 // vector i at [i*dim, (i+1)*dim)
	inv   []float64 // InvNorm of vector i
	rest  []entry   // the rest of item i
	pos   map[string]int
	bytes int64
}

type entry struct {
	key, text        string
	metadata         map[string]string
	created, updated time.Time
	bytes            int64 // what Bytes counts for it
}

// NewIndex returns an empty Index.
func NewIndex() *Index { return &Index{pos: map[string]int{}} }

// Grow makes room for n more items of dim numbers, so that a load of
// many items does not copy them again and again as the Index grows.
func (x *Index) Grow(n, dim int) {
	x.vecs = slices.Grow(x.vecs, n*dim)
	x.inv = slices.Grow(x.inv, n)
	x.rest = slices.Grow(x.rest, n)
}

// Len is the number of items.
func (x *Index) Len() int { return len(x.rest) }

// Dim is the length of the items' vectors, 0 when there are none.
func (x *Index) Dim() int { return x.dim }

// Bytes estimates the memory the Index holds, for caches to bound.
func (x *Index) Bytes() int64 { return x.bytes }

// itemOverhead estimates the bytes an item costs beyond its strings and
// vector: its entry, its place in pos, string headers; mapOverhead those
// of a metadata map, beyond its strings. Measured on Go 1.26, amd64.
const (
	itemOverhead = 160
	mapOverhead  = 320
)

// Put adds item, or replaces the item of its key. item.Namespace is not
// kept. A vector whose length is not Dim, while other items are there,
// is refused with memory.ErrDimension; so is one that replaces the only
// item, as a store refuses it.
func (x *Index) Put(item memory.Item) error {
	i, replace := x.pos[item.Key]
	if x.dim != 0 && len(item.Vector) != x.dim {
		return DimensionError(x.dim, len(item.Vector))
	}
	e := entry{key: item.Key, text: item.Text, created: item.CreatedAt, updated: item.UpdatedAt}
	if len(item.Metadata) > 0 {
		e.metadata = maps.Clone(item.Metadata)
	}
	e.bytes = itemOverhead + int64(len(e.key)+len(e.text)+4*len(item.Vector)+8)
	if len(e.metadata) > 0 {
		// A map of up to 8 entries is one group of 8 slots.
		e.bytes += mapOverhead + 72*int64(max(0, len(e.metadata)-8))
	}
	for k, v := range e.metadata {
		e.bytes += int64(len(k) + len(v))
	}
	if replace {
		x.bytes += e.bytes - x.rest[i].bytes
		x.rest[i] = e
		copy(x.vecs[i*x.dim:], item.Vector)
		x.inv[i] = InvNorm(item.Vector)
		return nil
	}
	x.dim = len(item.Vector)
	x.pos[item.Key] = len(x.rest)
	x.rest = append(x.rest, e)
	x.vecs = append(x.vecs, item.Vector...)
	x.inv = append(x.inv, InvNorm(item.Vector))
	x.bytes += e.bytes
	return nil
}

// Delete removes the item of key, and reports whether there was one.
func (x *Index) Delete(key string) bool {
	i, ok := x.pos[key]
	if !ok {
		return false
	}
	last := len(x.rest) - 1
	x.bytes -= x.rest[i].bytes
	if i != last {
		x.rest[i] = x.rest[last]
		x.inv[i] = x.inv[last]
		copy(x.vecs[i*x.dim:(i+1)*x.dim], x.vecs[last*x.dim:])
		x.pos[x.rest[i].key] = i
	}
	x.rest[last] = entry{}
	x.rest, x.inv, x.vecs = x.rest[:last], x.inv[:last], x.vecs[:last*x.dim]
	delete(x.pos, key)
	if last == 0 {
		x.dim = 0
	}
	return true
}

// Get returns a copy of the item of key, with namespace ns.
func (x *Index) Get(ns, key string) (memory.Item, bool) {
	i, ok := x.pos[key]
	if !ok {
		return memory.Item{}, false
	}
	return x.item(ns, i), true
}

// CreatedAt returns the CreatedAt of the item of key, if there is one.
func (x *Index) CreatedAt(key string) (time.Time, bool) {
	i, ok := x.pos[key]
	if !ok {
		return time.Time{}, false
	}
	return x.rest[i].created, true
}

// item returns a copy of item i, with namespace ns.
func (x *Index) item(ns string, i int) memory.Item {
	e := &x.rest[i]
	return memory.Item{Namespace: ns, Key: e.key, Text: e.text,
		Vector:   append([]float32(nil), x.vecs[i*x.dim:(i+1)*x.dim]...),
		Metadata: maps.Clone(e.metadata), CreatedAt: e.created, UpdatedAt: e.updated}
}

// Keys returns the keys, in no order.
func (x *Index) Keys() []string {
	keys := make([]string, len(x.rest))
	for i := range x.rest {
		keys[i] = x.rest[i].key
	}
	return keys
}

// Search searches the items, as memory.Store's Search says, for q, which
// memory.ValidQuery accepted. An empty Index gives no hits; a query of
// another length than Dim, memory.ErrDimension.
func (x *Index) Search(q memory.Query) ([]memory.Hit, error) {
	if len(x.rest) == 0 {
		return nil, nil
	}
	if len(q.Vector) != x.dim {
		return nil, DimensionError(x.dim, len(q.Vector))
	}
	r := NewRanker[int](q)
	dim := x.dim
	for i := range x.rest {
		if len(q.Filter) > 0 && !r.Matches(x.rest[i].metadata) {
			continue
		}
		r.Offer(r.Score(x.vecs[i*dim:(i+1)*dim:(i+1)*dim], x.inv[i]), x.rest[i].key, i)
	}
	best := r.Best()
	if len(best) == 0 {
		return nil, nil
	}
	hits := make([]memory.Hit, len(best))
	for j, b := range best {
		hits[j] = memory.Hit{Item: x.item(q.Namespace, b.Value), Score: b.Score}
	}
	return hits, nil
}

// DimensionError is the error of a vector of length got in a namespace
// whose vectors have length want. It wraps memory.ErrDimension.
func DimensionError(want, got int) error {
	return fmt.Errorf("%w: the namespace's vectors have %d dimensions, this one %d", memory.ErrDimension, want, got)
}
