package evals

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/cairn-dev/cairn/providers"
)

// Cache keeps model responses on disk, one file per request, so that a
// rerun of an agent that did not change is free and gives the same
// answers (see CachedModel). It is safe for concurrent use, also by
// several processes sharing the directory: each entry is written to a
// temporary file and renamed into place, so a reader sees a whole entry
// or none.
type Cache struct {
	dir string

	mu    sync.Mutex
	stats CacheStats
}

// CacheStats counts what a Cache did.
type CacheStats struct {
	// Hits are requests answered from the cache; Misses, requests the
	// model was called for.
	Hits, Misses int
	// Corrupt counts entries that could not be read back (they were
	// treated as misses, and overwritten by the model's new answer).
	Corrupt int
	// Problems says what went wrong with entries, one line each: a
	// corrupt entry, an entry that could not be written. None of them
	// fails a call.
	Problems []string
}

// cacheEntry is the file of one cached response.
type cacheEntry struct {
	Version  int                `json:"version"`
	Response providers.Response `json:"response"`
}

const cacheVersion = 1

// OpenCache opens the cache kept in dir, creating the directory if need
// be.
func OpenCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	return &Cache{dir: dir}, nil
}

// Stats returns what the cache has done so far.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Problems = append([]string(nil), s.Problems...)
	return s
}

func (c *Cache) count(f func(*CacheStats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.stats)
}

// CacheKey is the cache key of a request to a model: the SHA-256, in hex, of
// the canonical JSON (keys sorted, no spaces) of the model's name (its
// providers.Info, if it describes itself) and the whole request: the
// model asked for, the system instructions, the messages, the tools, the
// tool choice, the settings and the output schema. Two requests that
// differ in any of them have different keys.
func CacheKey(m providers.Model, req providers.Request) (string, error) {
	var info providers.Info
	if d, ok := m.(providers.Describer); ok {
		info = d.Describe()
	}
	data, err := json.Marshal(struct {
		Provider string            `json:"provider"`
		Model    string            `json:"model"`
		Request  providers.Request `json:"request"`
	}{info.Provider, info.Model, req})
	if err != nil {
		return "", fmt.Errorf("cache key: %w", err)
	}
	// Decoding and encoding again sorts the keys of the JSON the request
	// carries as it was written (tool parameters, output schemas).
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return "", fmt.Errorf("cache key: %w", err)
	}
	if data, err = json.Marshal(v); err != nil {
		return "", fmt.Errorf("cache key: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func (c *Cache) path(key string) string { return filepath.Join(c.dir, key+".json") }

// get returns the response cached under key, if there is a whole one.
func (c *Cache) get(key string) (providers.Response, bool) {
	data, err := os.ReadFile(c.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return providers.Response{}, false
	}
	var e cacheEntry
	if err == nil {
		err = json.Unmarshal(data, &e)
	}
	if err == nil && e.Version != cacheVersion {
		err = fmt.Errorf("entry version %d, not %d", e.Version, cacheVersion)
	}
	if err != nil {
		c.count(func(s *CacheStats) {
			s.Corrupt++
			s.Problems = append(s.Problems, fmt.Sprintf("corrupt cache entry %s: %v", c.path(key), err))
		})
		return providers.Response{}, false
	}
	return e.Response, true
}

// put stores resp under key: written whole to a temporary file, then
// renamed into place.
func (c *Cache) put(key string, resp providers.Response) {
	err := func() error {
		data, err := json.Marshal(cacheEntry{Version: cacheVersion, Response: resp})
		if err != nil {
			return err
		}
		f, err := os.CreateTemp(c.dir, ".tmp-"+key+"-*")
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), c.path(key))
		}
		if err != nil {
			_ = os.Remove(f.Name())
		}
		return err
	}()
	if err != nil {
		c.count(func(s *CacheStats) {
			s.Problems = append(s.Problems, fmt.Sprintf("store cache entry %s: %v", c.path(key), err))
		})
	}
}

// CachedModel returns m answering from c: a request seen before (same
// model, same request, see CacheKey) gets the stored response without a call
// to m; any other calls m, and a response m gives without an error is
// stored. Errors are not cached. The model returned streams if m does: a
// cached response is delivered as its text, then each tool call whole,
// and a miss streams from m. It describes itself as m does.
//
// Cached responses make a rerun of an agent that did not change free and
// exact: every request is the same, so every answer is. A change to the
// prompt, the tools, the settings or the conversation misses, from the
// first request it changes.
func CachedModel(m providers.Model, c *Cache) providers.Model {
	cm := &cachedModel{m: m, c: c}
	if _, ok := m.(providers.StreamingModel); ok {
		return &cachedStreamingModel{cm}
	}
	return cm
}

type cachedModel struct {
	m providers.Model
	c *Cache
}

var (
	_ providers.Describer      = (*cachedModel)(nil)
	_ providers.StreamingModel = (*cachedStreamingModel)(nil)
)

// Describe implements providers.Describer with m's description, if it
// has one.
func (cm *cachedModel) Describe() providers.Info {
	if d, ok := cm.m.(providers.Describer); ok {
		return d.Describe()
	}
	return providers.Info{}
}

// Generate implements providers.Model.
func (cm *cachedModel) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	return cm.answer(ctx, req, func() (providers.Response, error) { return cm.m.Generate(ctx, req) }, nil)
}

// answer returns the cached response for req, delivered to fn if fn is
// not nil, or calls call and caches what it returns.
func (cm *cachedModel) answer(ctx context.Context, req providers.Request, call func() (providers.Response, error),
	fn func(providers.Delta) error) (providers.Response, error) {
	if err := ctx.Err(); err != nil {
		return providers.Response{}, err
	}
	key, err := CacheKey(cm.m, req)
	if err != nil {
		return providers.Response{}, err
	}
	if resp, ok := cm.c.get(key); ok {
		cm.c.count(func(s *CacheStats) { s.Hits++ })
		if fn != nil {
			for _, d := range wholeDeltas(resp) {
				if err := fn(d); err != nil {
					return providers.Response{}, fmt.Errorf("stream callback: %w", err)
				}
			}
		}
		return resp, nil
	}
	cm.c.count(func(s *CacheStats) { s.Misses++ })
	resp, err := call()
	if err != nil {
		return resp, err
	}
	cm.c.put(key, resp)
	return resp, nil
}

type cachedStreamingModel struct{ *cachedModel }

// Stream implements providers.StreamingModel.
func (cm *cachedStreamingModel) Stream(ctx context.Context, req providers.Request, fn func(providers.Delta) error) (providers.Response, error) {
	sm := cm.m.(providers.StreamingModel)
	return cm.answer(ctx, req, func() (providers.Response, error) { return sm.Stream(ctx, req, fn) }, fn)
}

// wholeDeltas is a response as deltas: its text, then each tool call
// whole, as providers.Stream delivers the answer of a model that does not
// stream.
func wholeDeltas(resp providers.Response) []providers.Delta {
	var ds []providers.Delta
	if resp.Message.Content != "" {
		ds = append(ds, providers.Delta{Text: resp.Message.Content})
	}
	for i, tc := range resp.Message.ToolCalls {
		ds = append(ds, providers.Delta{ToolCall: &providers.ToolCallDelta{Index: i, ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments}})
	}
	return ds
}
