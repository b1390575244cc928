package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/internal/exact"
)

var _ memory.Store = (*Store)(nil)

// Defaults of Options.
const (
	DefaultCacheBytes = 256 << 20
	DefaultChangeLog  = 1000
)

// Options configure a Store. The zero Options are the defaults.
type Options struct {
	// Prefix begins every key the store uses; DefaultPrefix if empty.
	// Stores with the same prefix share their items.
	Prefix string
	// CacheBytes bounds the memory of the search cache, which keeps the
	// decoded items of the namespaces searched last (see the package
	// doc). 0 means DefaultCacheBytes; a negative value turns the cache
	// off, so that every search reads its whole namespace from Redis.
	CacheBytes int64
	// ChangeLog is the most writes of a namespace that Redis remembers,
	// so that a cache that missed no more than that many catches up by
	// reading only the items they wrote. 0 means DefaultChangeLog.
	ChangeLog int
	// Logger gets a warning for each corrupt item that Search skips;
	// slog.Default() if nil.
	Logger *slog.Logger
}

// Store is a memory.Store in Redis. It is safe for concurrent use. Make
// one per process and share it: each Store has its own search cache.
type Store struct {
	client    goredis.UniversalClient
	prefix    string
	changeLog int
	log       *slog.Logger
	scripts   scripts
	cache     *cache // nil when off
}

// New returns a Store over client: a *goredis.Client, or a
// *goredis.ClusterClient for Redis Cluster. It needs Redis 6.2 or later,
// without modules. Closing the client is the caller's business.
func New(client goredis.UniversalClient, opts Options) *Store {
	s := &Store{client: client, prefix: opts.Prefix, changeLog: opts.ChangeLog, log: opts.Logger, scripts: newScripts()}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.changeLog <= 0 {
		s.changeLog = DefaultChangeLog
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	switch {
	case opts.CacheBytes == 0:
		s.cache = newCache(DefaultCacheBytes)
	case opts.CacheBytes > 0:
		s.cache = newCache(opts.CacheBytes)
	}
	return s
}

// now is the store's time: UTC, without a monotonic reading.
func now() time.Time { return time.Now().UTC().Round(0) }

// newTag returns 8 random bytes that name one write.
func newTag() string {
	return string(binary.LittleEndian.AppendUint64(nil, rand.Uint64()))
}

// Put implements memory.Store: one script, one round trip.
func (s *Store) Put(ctx context.Context, item memory.Item) error {
	if err := memory.ValidItem(item); err != nil {
		return err
	}
	t := now()
	item.CreatedAt, item.UpdatedAt = t, t
	k := s.keysOf(item.Namespace)
	res, err := s.scripts.put.Run(ctx, s.client, k.writes(),
		item.Key, encode(item), len(item.Vector), newTag(), s.changeLog).Slice()
	if err != nil {
		return fmt.Errorf("memory/redis: put %q in %q: %w", item.Key, item.Namespace, err)
	}
	if len(res) == 2 && res[0] == int64(0) {
		dim, _ := strconv.Atoi(fmt.Sprint(res[1]))
		return fmt.Errorf("put %q in %q: %w", item.Key, item.Namespace, exact.DimensionError(dim, len(item.Vector)))
	}
	return nil
}

// Get implements memory.Store: one round trip.
func (s *Store) Get(ctx context.Context, namespace, key string) (memory.Item, error) {
	if err := checkKey(namespace, key); err != nil {
		return memory.Item{}, err
	}
	b, err := s.client.HGet(ctx, s.keysOf(namespace).items, key).Result()
	if errors.Is(err, goredis.Nil) {
		return memory.Item{}, fmt.Errorf("%w: %q in %q", memory.ErrNotFound, key, namespace)
	}
	if err != nil {
		return memory.Item{}, fmt.Errorf("memory/redis: get %q in %q: %w", key, namespace, err)
	}
	it, err := decode(namespace, key, b)
	if err != nil {
		return memory.Item{}, &memory.CorruptError{Namespace: namespace, Key: key, Err: err}
	}
	return it, nil
}

// Delete implements memory.Store: one script, one round trip.
func (s *Store) Delete(ctx context.Context, namespace, key string) error {
	if err := checkKey(namespace, key); err != nil {
		return err
	}
	err := s.scripts.delete.Run(ctx, s.client, s.keysOf(namespace).writes(), key, newTag(), s.changeLog).Err()
	if err != nil {
		return fmt.Errorf("memory/redis: delete %q in %q: %w", key, namespace, err)
	}
	return nil
}

// List implements memory.Store: one script, one round trip. An item that
// does not decode ends the page: List returns the items before it and a
// *memory.CorruptError naming it.
func (s *Store) List(ctx context.Context, namespace, after string, limit int) ([]memory.Item, error) {
	if err := memory.ValidNamespace(namespace); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, fmt.Errorf("%w: List limit %d", memory.ErrInvalidQuery, limit)
	}
	if limit == 0 {
		limit = memory.DefaultListLimit
	}
	k := s.keysOf(namespace)
	res, err := s.scripts.list.Run(ctx, s.client, []string{k.keys, k.items}, after, limit).Slice()
	if err != nil {
		return nil, fmt.Errorf("memory/redis: list %q: %w", namespace, err)
	}
	items := make([]memory.Item, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		key, _ := res[i].(string)
		value, ok := res[i+1].(string)
		if !ok {
			return items, &memory.CorruptError{Namespace: namespace, Key: key, Err: errors.New("in the key index, without a value")}
		}
		it, err := decode(namespace, key, value)
		if err != nil {
			return items, &memory.CorruptError{Namespace: namespace, Key: key, Err: err}
		}
		items = append(items, it)
	}
	return items, nil
}

// checkKey checks a namespace and a key.
func checkKey(namespace, key string) error {
	if err := memory.ValidNamespace(namespace); err != nil {
		return err
	}
	return memory.ValidKey(key)
}
