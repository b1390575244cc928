package redis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/internal/exact"
)

// scanCount is the COUNT of each HSCAN that reads a whole namespace.
const scanCount = 1000

// estimatedItemBytes is what a full load expects an item to take in the
// cache, beyond its vector, before it has read any.
const estimatedItemBytes = 256

// Search implements memory.Store. Search is exact: every item of the
// namespace is scored, in Go, against decoded vectors that the cache
// keeps (see the package doc). With the namespace in the cache and
// nothing written since, it costs one round trip (HMGET of the
// namespace's version); after writes, one more to read the items they
// wrote.
//
// Search skips an item that does not decode, or whose vector's length is
// not the namespace's, and logs a warning naming it: one bad value does
// not stop the searches of its namespace. Get gives its error.
//
// Search sees every write that finished before it began. A write
// concurrent with it may be seen or not.
func (s *Store) Search(ctx context.Context, q memory.Query) ([]memory.Hit, error) {
	if err := memory.ValidQuery(q); err != nil {
		return nil, err
	}
	k := s.keysOf(q.Namespace)
	st, err := s.state(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("memory/redis: search %q: %w", q.Namespace, err)
	}
	if st.ver == 0 { // no items
		if s.cache != nil {
			s.cache.dropNS(q.Namespace)
		}
		return nil, nil
	}
	if st.dim != len(q.Vector) {
		return nil, exact.DimensionError(st.dim, len(q.Vector))
	}
	if s.cache == nil {
		return s.scan(ctx, k, q, st.dim)
	}

	sp := s.cache.get(q.Namespace)
	sp.mu.RLock()
	if sp.index != nil && sp.ver == st.ver && sp.tag == st.tag {
		defer sp.mu.RUnlock()
		return sp.index.Search(q)
	}
	sp.mu.RUnlock()

	sp.mu.Lock()
	if sp.index == nil || sp.ver != st.ver || sp.tag != st.tag { // not refreshed by another search meanwhile
		kept, err := s.refresh(ctx, k, sp)
		if err != nil {
			sp.mu.Unlock()
			return nil, err
		}
		if !kept {
			sp.mu.Unlock()
			s.cache.drop(sp)
			return s.scan(ctx, k, q, st.dim)
		}
	}
	defer sp.mu.Unlock()
	hits, err := sp.index.Search(q)
	s.cache.resize(sp, sp.index.Bytes())
	return hits, err
}

// nsState is what the namespace's meta hash says.
type nsState struct {
	ver int64  // 0 if the namespace has no items
	tag string // of the last write
	dim int
}

// state reads the namespace's meta hash.
func (s *Store) state(ctx context.Context, k nsKeys) (nsState, error) {
	vals, err := s.client.HMGet(ctx, k.meta, "ver", "tag", "dim").Result()
	if err != nil {
		return nsState{}, err
	}
	if vals[0] == nil {
		return nsState{}, nil
	}
	var st nsState
	ver, _ := vals[0].(string)
	st.tag, _ = vals[1].(string)
	dim, _ := vals[2].(string)
	st.ver, err = strconv.ParseInt(ver, 10, 64)
	if err == nil {
		st.dim, err = strconv.Atoi(dim)
	}
	if err != nil || st.ver < 1 || st.dim < 1 {
		return nsState{}, fmt.Errorf("%s holds ver %v and dim %v: want two positive integers", k.meta, vals[0], vals[2])
	}
	return st, nil
}

// refresh brings sp up to the namespace's current state, reading only the
// items written since sp's version if the namespace's log still holds
// them all, else the whole namespace. It reports false, and changes
// nothing, when it must read the whole namespace and estimates it too big
// for the cache.
func (s *Store) refresh(ctx context.Context, k nsKeys, sp *space) (bool, error) {
	ver, tag := sp.ver, sp.tag
	if sp.index == nil {
		ver, tag = 0, ""
	}
	res, err := s.scripts.changes.Run(ctx, s.client, []string{k.meta, k.log, k.items}, ver, tag).Slice()
	if err != nil {
		return false, fmt.Errorf("memory/redis: search %q: read changes: %w", sp.ns, err)
	}
	if len(res) == 1 { // emptied since state read it
		sp.index, sp.ver, sp.tag = exact.NewIndex(), 0, ""
		return true, nil
	}
	ch, err := parseChanges(res)
	if err != nil {
		return false, fmt.Errorf("memory/redis: search %q: read changes: %w", sp.ns, err)
	}
	switch ch.mode {
	case "changes":
		for _, c := range ch.changes {
			if c.deleted {
				sp.index.Delete(c.key)
				continue
			}
			it, err := decodeDim(sp.ns, c.key, c.value, ch.dim)
			if err == nil {
				err = sp.index.Put(it)
			}
			if err != nil {
				sp.index.Delete(c.key)
				s.skip(sp.ns, c.key, err)
			}
		}
	case "full":
		if ch.items*(4*int64(ch.dim)+estimatedItemBytes) > s.cache.max {
			return false, nil
		}
		index := exact.NewIndex()
		index.Grow(int(ch.items), ch.dim)
		err := s.scanItems(ctx, k, sp.ns, ch.dim, func(it memory.Item) {
			_ = index.Put(it) // scanItems checked the dimension
		})
		if err != nil {
			return false, err
		}
		sp.index = index
	}
	sp.ver, sp.tag = ch.ver, ch.tag
	return true, nil
}

// changes is what changes.lua returned.
type changes struct {
	ver     int64
	tag     string
	items   int64
	dim     int
	mode    string // "fresh", "full" or "changes"
	changes []change
}

// change is an item written since a cache's version: its value now, or
// deleted.
type change struct {
	key, value string
	deleted    bool
}

func parseChanges(res []any) (changes, error) {
	var ch changes
	var dim int64
	var ok [5]bool
	if len(res) >= 5 {
		ch.ver, ok[0] = res[0].(int64)
		ch.tag, ok[1] = res[1].(string)
		ch.items, ok[2] = res[2].(int64)
		dim, ok[3] = res[3].(int64)
		ch.mode, ok[4] = res[4].(string)
	}
	if ok != [5]bool{true, true, true, true, true} || dim < 1 || dim > memory.MaxDimensions || len(res)%2 == 0 {
		return changes{}, fmt.Errorf("unexpected answer %.200v", res)
	}
	ch.dim = int(dim)
	for i := 5; i < len(res); i += 2 {
		key, ok := res[i].(string)
		if !ok {
			return changes{}, fmt.Errorf("unexpected key %v", res[i])
		}
		value, ok := res[i+1].(string)
		ch.changes = append(ch.changes, change{key: key, value: value, deleted: !ok})
	}
	return ch, nil
}

// scan searches the namespace without the cache, reading it whole.
func (s *Store) scan(ctx context.Context, k nsKeys, q memory.Query, dim int) ([]memory.Hit, error) {
	r := exact.NewRanker[memory.Item](q)
	seen := map[string]bool{} // HSCAN may return a key twice
	err := s.scanItems(ctx, k, q.Namespace, dim, func(it memory.Item) {
		if seen[it.Key] {
			return
		}
		seen[it.Key] = true
		if r.Matches(it.Metadata) {
			r.Offer(r.Score(it.Vector, exact.InvNorm(it.Vector)), it.Key, it)
		}
	})
	if err != nil {
		return nil, err
	}
	best := r.Best()
	if len(best) == 0 {
		return nil, nil
	}
	hits := make([]memory.Hit, len(best))
	for i, b := range best {
		hits[i] = memory.Hit{Item: b.Value, Score: b.Score}
	}
	return hits, nil
}

// scanItems calls fn with every item of the namespace whose vector has
// dim numbers, reading them with HSCAN: an item written meanwhile may
// come or not, and one may come twice. It skips the others, and those
// that do not decode.
func (s *Store) scanItems(ctx context.Context, k nsKeys, ns string, dim int, fn func(memory.Item)) error {
	var cursor uint64
	for {
		kvs, next, err := s.client.HScan(ctx, k.items, cursor, "", scanCount).Result()
		if err != nil {
			return fmt.Errorf("memory/redis: search %q: read items: %w", ns, err)
		}
		for i := 0; i+1 < len(kvs); i += 2 {
			it, err := decodeDim(ns, kvs[i], kvs[i+1], dim)
			if err != nil {
				s.skip(ns, kvs[i], err)
				continue
			}
			fn(it)
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// decodeDim decodes an item whose vector must have dim numbers.
func decodeDim(ns, key, value string, dim int) (memory.Item, error) {
	it, err := decode(ns, key, value)
	if err == nil && len(it.Vector) != dim {
		err = exact.DimensionError(dim, len(it.Vector))
	}
	return it, err
}

// skip logs a corrupt item that a search skips.
func (s *Store) skip(ns, key string, err error) {
	s.log.Warn("memory/redis: search skips a corrupt item", "namespace", ns, "key", key, "err",
		&memory.CorruptError{Namespace: ns, Key: key, Err: err})
}
