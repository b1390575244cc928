package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// BenchURLEnv is the environment variable that points the Redis
// benchmarks at an existing redis-server, by URL
// (redis://[user:password@]host:port/db, or rediss:// for TLS). When it is
// empty or unset, each benchmark starts a private server with Start.
//
// A benchmark on such a server owns only the keys under a random prefix
// (see ForBench) and deletes them when it ends; it never flushes the
// database. Other clients of the server share its CPU and memory, so the
// numbers that come from INFO (CPU, used_memory) count their work too.
const BenchURLEnv = "CAIRN_BENCH_REDIS_URL"

// Target is the Redis server a benchmark runs on: a private one that
// ForBench started, or the one that BenchURLEnv names.
type Target struct {
	// URL is the server's URL, to open stores and clients with.
	URL string
	// Prefix is the benchmark's key prefix: every key the benchmark
	// writes must begin with it and a colon. It is "cairn" (the store's
	// default) on a private server, and a random "cairnb-<hex>" on a
	// server of BenchURLEnv, whose keys under it ForBench deletes when the
	// benchmark ends.
	Prefix string
	// Server is the private server, nil on a server of BenchURLEnv.
	Server *Server

	opts   *goredis.Options
	client *goredis.Client
}

// ForBench returns the Redis server a benchmark is to use: the one that
// BenchURLEnv names, if it is set, with a fresh random key prefix whose
// keys are deleted when the benchmark ends; else a private server that
// Start starts, with the store's default prefix. It fails the benchmark
// if the URL does not parse or the server does not answer PING.
func ForBench(tb testing.TB) *Target {
	tb.Helper()
	url := os.Getenv(BenchURLEnv)
	if url == "" {
		srv := Start(tb)
		opts, err := goredis.ParseURL(srv.URL())
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		return &Target{URL: srv.URL(), Prefix: "cairn", Server: srv, opts: opts, client: srv.Client()}
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		tb.Fatalf("redistest: %s: %v", BenchURLEnv, err)
	}
	t := &Target{URL: url, Prefix: randomPrefix(tb), opts: opts}
	t.client = goredis.NewClient(t.Options())
	// Registered first, so it runs last: after the benchmark's own
	// cleanups have stopped its workers and closed its stores.
	tb.Cleanup(func() {
		defer t.client.Close()
		if err := DeleteKeys(context.Background(), t.client, t.Prefix); err != nil {
			tb.Errorf("redistest: delete the keys of prefix %s: %v", t.Prefix, err)
		}
	})
	if err := t.client.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("redistest: %s=%s: %v", BenchURLEnv, url, err)
	}
	return t
}

// Options returns a new copy of the client options of the server, for a
// client with a connection pool of its own.
func (t *Target) Options() *goredis.Options {
	o := *t.opts
	if t.opts.TLSConfig != nil {
		o.TLSConfig = t.opts.TLSConfig.Clone()
	}
	return &o
}

// Client returns a client of the server, the same one on every call. It
// is closed when the benchmark ends.
func (t *Target) Client() *goredis.Client { return t.client }

// Addr returns the server's address, host:port.
func (t *Target) Addr() string { return t.opts.Addr }

// randomPrefix returns "cairnb-" and 8 random hex digits.
func randomPrefix(tb testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	return "cairnb-" + hex.EncodeToString(b[:])
}

// DeleteKeys deletes the keys of the server of client that begin with
// prefix and a colon, a SCAN page at a time. Keys written while it runs
// may survive it.
func DeleteKeys(ctx context.Context, client goredis.UniversalClient, prefix string) error {
	pattern := GlobEscape(prefix) + ":*"
	del := func(ctx context.Context, c *goredis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			// One key a command: on a Cluster, keys of other slots
			// cannot share a DEL.
			_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for _, k := range batch {
					p.Del(ctx, k)
				}
				return nil
			})
			batch = batch[:0]
			return err
		}
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 1000 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	}
	switch c := client.(type) {
	case *goredis.ClusterClient:
		return c.ForEachMaster(ctx, del)
	case *goredis.Client:
		return del(ctx, c)
	default:
		return fmt.Errorf("redistest: delete keys: a client of type %T", client)
	}
}

// GlobEscape escapes the characters that a SCAN MATCH pattern gives a
// meaning to.
func GlobEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
