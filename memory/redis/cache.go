package redis

import (
	"container/list"
	"sync"

	"github.com/cairn-dev/cairn/memory/internal/exact"
)

// cache keeps the decoded items of the namespaces searched last, each
// with the version and tag of the write it last saw, and at most max
// bytes of them in all (as exact.Index.Bytes estimates them): past that,
// the namespace searched longest ago goes first. A namespace larger than
// max on its own is not kept.
type cache struct {
	max int64

	mu   sync.Mutex // guards what follows, and each space's elem and bytes
	used int64
	lru  list.List // of *space, the most recently used first
	byNS map[string]*list.Element
}

// space is the cache of one namespace.
type space struct {
	ns string

	mu    sync.RWMutex // guards what follows
	index *exact.Index // nil until loaded
	ver   int64        // the namespace's version that index holds
	tag   string       // the tag of the write that made ver

	elem  *list.Element // nil once evicted; guarded by cache.mu
	bytes int64         // counted in cache.used; guarded by cache.mu
}

func newCache(max int64) *cache {
	return &cache{max: max, byNS: map[string]*list.Element{}}
}

// get returns the space of ns, new and empty if it has none, as the most
// recently used.
func (c *cache) get(ns string) *space {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byNS[ns]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*space)
	}
	sp := &space{ns: ns}
	sp.elem = c.lru.PushFront(sp)
	c.byNS[ns] = sp.elem
	return sp
}

// resize records that sp now holds bytes, and evicts the spaces used
// longest ago until the cache is within its bound: sp itself last, if it
// alone is past it. A space evicted still works for whoever holds it; it
// is only no longer kept.
func (c *cache) resize(sp *space, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sp.elem == nil {
		return
	}
	c.used += bytes - sp.bytes
	sp.bytes = bytes
	for e := c.lru.Back(); e != nil && c.used > c.max; {
		prev := e.Prev()
		if other := e.Value.(*space); other != sp {
			c.remove(other)
		}
		e = prev
	}
	if c.used > c.max {
		c.remove(sp)
	}
}

// drop evicts sp, if it is kept.
func (c *cache) drop(sp *space) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sp.elem != nil {
		c.remove(sp)
	}
}

// dropNS evicts the space of ns, if there is one.
func (c *cache) dropNS(ns string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byNS[ns]; ok {
		c.remove(e.Value.(*space))
	}
}

// remove evicts sp. c.mu must be held.
func (c *cache) remove(sp *space) {
	c.lru.Remove(sp.elem)
	delete(c.byNS, sp.ns)
	sp.elem = nil
	c.used -= sp.bytes
	sp.bytes = 0
}

// stats returns the number of namespaces kept and their bytes, for tests.
func (c *cache) stats() (spaces int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.used
}
