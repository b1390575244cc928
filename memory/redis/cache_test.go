package redis

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/memory"
)

// commands is a hook that records the names of the commands a client
// sends, EVALSHA and EVAL as the script's first key's last part
// ("eval:meta").
type commands struct {
	mu    sync.Mutex
	names []string
}

func (c *commands) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *commands) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.add(cmd)
		return next(ctx, cmd)
	}
}

func (c *commands) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			c.add(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *commands) add(cmd goredis.Cmder) {
	name := strings.ToLower(cmd.Name())
	if name == "evalsha" || name == "eval" {
		key := fmt.Sprint(cmd.Args()[3])
		name = "eval:" + key[strings.LastIndexByte(key, ':')+1:]
	}
	c.mu.Lock()
	c.names = append(c.names, name)
	c.mu.Unlock()
}

// take returns the commands sent since the last take.
func (c *commands) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := c.names
	c.names = nil
	return names
}

// newClient returns a client of srv that records its commands.
func newClient(t *testing.T, srv *redistest.Server) (*goredis.Client, *commands) {
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	rec := &commands{}
	client.AddHook(rec)
	return client, rec
}

func vec(x, y float32) []float32 { return []float32{x, y} }

func put(t *testing.T, s *Store, ns, key, text string, v []float32) {
	t.Helper()
	require.NoError(t, s.Put(t.Context(), memory.Item{Namespace: ns, Key: key, Text: text, Vector: v}))
}

func searchKeys(t *testing.T, s *Store, ns string, v []float32) []string {
	t.Helper()
	hits, err := s.Search(t.Context(), memory.Query{Namespace: ns, Vector: v, TopK: memory.MaxTopK, MinScore: -1})
	require.NoError(t, err)
	var keys []string
	for _, h := range hits {
		keys = append(keys, h.Item.Key+"="+h.Item.Text)
	}
	return keys
}

// TestCacheRoundTrips checks what a search reads from Redis: only the
// version when nothing changed, the written items after a few writes,
// everything after more writes than the log keeps.
func TestCacheRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	client, rec := newClient(t, srv)
	s := New(client, Options{ChangeLog: 5})
	put(t, s, "warm-up", "k", "t", vec(1, 0))
	searchKeys(t, s, "warm-up", vec(1, 0)) // loads the scripts
	for i := range 20 {
		put(t, s, "ns", fmt.Sprintf("k%02d", i), "t", vec(1, float32(i)))
	}
	rec.take()
	require.Len(t, searchKeys(t, s, "ns", vec(1, 0)), 20)
	assert.Equal(t, []string{"hmget", "eval:meta", "hscan"}, rec.take(), "first search: version, then a full load")

	require.Len(t, searchKeys(t, s, "ns", vec(1, 0)), 20)
	assert.Equal(t, []string{"hmget"}, rec.take(), "search with nothing written: one round trip")

	put(t, s, "ns", "k03", "changed", vec(-1, 0))
	require.NoError(t, s.Delete(t.Context(), "ns", "k04"))
	put(t, s, "ns", "new", "added", vec(0, 1))
	rec.take()
	keys := searchKeys(t, s, "ns", vec(1, 0))
	assert.Equal(t, []string{"hmget", "eval:meta"}, rec.take(), "search after 3 writes: the written items only")
	assert.Len(t, keys, 20)
	assert.Contains(t, keys, "k03=changed")
	assert.Contains(t, keys, "new=added")
	assert.NotContains(t, keys, "k04=t")

	for i := range 6 {
		put(t, s, "ns", fmt.Sprintf("m%d", i), "more", vec(1, 1))
	}
	rec.take()
	assert.Len(t, searchKeys(t, s, "ns", vec(1, 0)), 26)
	assert.Equal(t, []string{"hmget", "eval:meta", "hscan"}, rec.take(), "search after more writes than the log keeps: a full load")

	spaces, bytes := s.cache.stats()
	assert.Equal(t, 2, spaces)
	assert.Positive(t, bytes)
}

// TestCacheSeesOtherStores checks that a store's cache follows the writes
// of another store, and is not fooled by a namespace emptied and filled
// again with as many writes: its version moved on by the same count, but
// the log's tags differ.
func TestCacheSeesOtherStores(t *testing.T) {
	srv := redistest.Start(t)
	a := New(srv.Client(), Options{})
	b := New(srv.Client(), Options{})
	put(t, a, "ns", "x", "from a", vec(1, 0))
	put(t, a, "ns", "y", "from a", vec(0, 1))
	assert.Equal(t, []string{"x=from a", "y=from a"}, searchKeys(t, a, "ns", vec(1, 0)))
	put(t, b, "ns", "y", "from b", vec(1, 0.5))
	assert.Equal(t, []string{"x=from a", "y=from b"}, searchKeys(t, a, "ns", vec(1, 0)), "a sees b's write")

	// a's cache is at version 3. Empty the namespace, then make 5 writes:
	// version 5, whose log's entries 4 and 5 alone would leave x and y
	// in a's cache.
	require.NoError(t, b.Delete(t.Context(), "ns", "x"))
	require.NoError(t, b.Delete(t.Context(), "ns", "y"))
	for i, key := range []string{"p", "q", "r", "s", "t"} {
		put(t, b, "ns", key, "refilled", vec(1, float32(i)))
	}
	assert.Equal(t, []string{"p=refilled", "q=refilled", "r=refilled", "s=refilled", "t=refilled"}, searchKeys(t, a, "ns", vec(1, 0)),
		"a after the namespace was emptied and refilled")

	// Now to the same version, 5: only the tag tells.
	for _, key := range []string{"p", "q", "r", "s", "t"} {
		require.NoError(t, b.Delete(t.Context(), "ns", key))
	}
	for i, key := range []string{"v", "w", "x", "y", "z"} {
		put(t, b, "ns", key, "again", vec(1, float32(i)))
	}
	assert.Equal(t, []string{"v=again", "w=again", "x=again", "y=again", "z=again"}, searchKeys(t, a, "ns", vec(1, 0)),
		"a after the namespace was emptied and refilled to the same version")
}

// TestCacheBound checks that the cache keeps the namespaces searched last
// within its bound, and searches a namespace too big for it without it.
func TestCacheBound(t *testing.T) {
	srv := redistest.Start(t)
	client, rec := newClient(t, srv)
	s := New(client, Options{CacheBytes: 2000})
	for _, ns := range []string{"a", "b", "c"} {
		for i := range 5 {
			put(t, s, ns, fmt.Sprint(i), "t", vec(1, float32(i)))
		}
	}
	for i := range 40 {
		put(t, s, "big", fmt.Sprint(i), "t", vec(1, float32(i)))
	}
	for _, ns := range []string{"a", "b", "c"} {
		assert.Len(t, searchKeys(t, s, ns, vec(1, 0)), 5)
		_, used := s.cache.stats()
		assert.LessOrEqual(t, used, int64(2000))
	}
	spaces, _ := s.cache.stats()
	assert.Equal(t, 2, spaces, "namespaces kept within 2000 bytes")
	rec.take()
	assert.Len(t, searchKeys(t, s, "c", vec(1, 0)), 5)
	assert.Equal(t, []string{"hmget"}, rec.take(), "the namespace searched last is kept")

	for range 2 {
		assert.Len(t, searchKeys(t, s, "big", vec(1, 0)), 40)
		assert.Equal(t, []string{"hmget", "eval:meta", "hscan"}, rec.take(), "a namespace too big for the cache is read whole each time")
	}
	_, used := s.cache.stats()
	assert.LessOrEqual(t, used, int64(2000))
}

// TestCorruptItems writes values that do not decode straight into Redis.
func TestCorruptItems(t *testing.T) {
	srv := redistest.Start(t)
	var logged bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logged, mu: &logMu}, nil))
	for name, opts := range map[string]Options{"Cache": {Logger: logger}, "NoCache": {CacheBytes: -1, Logger: logger}} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			opts.Prefix = "corrupt-" + name
			s := New(srv.Client(), opts)
			for _, key := range []string{"a", "b", "d", "e"} {
				put(t, s, "ns", key, "good "+key, vec(1, 0))
			}
			if name == "Cache" {
				require.Len(t, searchKeys(t, s, "ns", vec(1, 0)), 4, "cached before the corruption")
			}
			k := s.keysOf("ns")
			// b: a good item, written through the store (so a cache
			// catches up with it incrementally), then cut short; c:
			// garbage; ghost: only in the key index.
			put(t, s, "ns", "b", "good b again", vec(1, 0))
			good, err := srv.Client().HGet(ctx, k.items, "b").Result()
			require.NoError(t, err)
			require.NoError(t, srv.Client().HSet(ctx, k.items, "b", good[:len(good)-3]).Err())
			require.NoError(t, srv.Client().HSet(ctx, k.items, "c", "garbage").Err())
			require.NoError(t, srv.Client().ZAdd(ctx, k.keys, goredis.Z{Member: "c"}, goredis.Z{Member: "ghost"}).Err())
			put(t, s, "ns", "e", "good e again", vec(1, 0))

			_, err = s.Get(ctx, "ns", "c")
			var ce *memory.CorruptError
			require.ErrorAs(t, err, &ce)
			assert.ErrorIs(t, err, memory.ErrCorrupt)
			assert.Equal(t, "c", ce.Key)
			assert.Contains(t, err.Error(), `"c"`)
			_, err = s.Get(ctx, "ns", "b")
			assert.ErrorIs(t, err, memory.ErrCorrupt, "Get of a value cut short")

			items, err := s.List(ctx, "ns", "", 10)
			require.ErrorAs(t, err, &ce, "List over a corrupt item")
			assert.Equal(t, "b", ce.Key)
			assert.Equal(t, []string{"a"}, keysOfItems(items), "List returns the items before the corrupt one")
			items, err = s.List(ctx, "ns", ce.Key, 10)
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "c", ce.Key)
			assert.Empty(t, items)
			items, err = s.List(ctx, "ns", ce.Key, 10)
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "d", keysOfItems(items)[0])
			assert.Equal(t, "ghost", ce.Key, "a key in the index without a value")

			for _, st := range []*Store{s, New(srv.Client(), opts)} { // incremental (or none), then full
				logMu.Lock()
				logged.Reset()
				logMu.Unlock()
				assert.Equal(t, []string{"a=good a", "d=good d", "e=good e again"}, searchKeys(t, st, "ns", vec(1, 0)), "Search skips corrupt items")
				logMu.Lock()
				out := logged.String()
				logMu.Unlock()
				assert.Contains(t, out, "key=b")
				assert.NotContains(t, out, "key=a")
			}

			for _, key := range []string{"b", "c", "ghost"} {
				require.NoError(t, s.Delete(ctx, "ns", key))
			}
			items, err = s.List(ctx, "ns", "", 10)
			require.NoError(t, err, "List after deleting the corrupt items")
			assert.Equal(t, []string{"a", "d", "e"}, keysOfItems(items))
		})
	}
}

func keysOfItems(items []memory.Item) []string {
	var keys []string
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	return keys
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
