// Package redis is a memory.Store in Redis: long-term memory that runs on
// a plain Redis, 6.2 or later (only 7.0 is tested), without modules, and
// on Redis Cluster.
//
// Search is exact: the vectors are kept in Redis and scored in Go, every
// one of the namespace, by cosine similarity. No server-side vector index
// is used (Redis 8's vector sets, or RediSearch): none was at hand to test
// against.
//
// # Search cache
//
// A Store keeps the decoded items of the namespaces it searched last, so a
// search reads nothing from Redis but the namespace's version when
// nothing changed. Every write increments the version and appends its key
// to a short log; a search that finds the version moved reads only the
// items written since, in one round trip, or, when the log no longer
// holds them all (more than Options.ChangeLog writes, or more writes than
// items), the whole namespace again. Each write also carries 8 random
// bytes, its tag, which the cache checks against the log: a namespace
// emptied and filled again, or one that lost writes in a failover, is read
// whole, never patched wrongly.
//
// The cache is bounded by Options.CacheBytes (256 MiB by default): past
// it, the namespaces searched longest ago are dropped. A namespace too
// big for the bound on its own is searched without the cache, by reading
// it whole (HSCAN) for each search.
//
// The cache sees the writes of every Store that shares its prefix, in
// any process, because they go through the scripts that keep the version
// and the log. Write the keys only through a Store: a value changed by
// hand is not seen by a cache that holds its namespace.
//
// # Corrupt items
//
// A value that does not decode (written by another program, or by a
// newer version of this one) makes Get return a *memory.CorruptError
// naming the item. List returns the items before it with that error, so
// a caller can page on after its key. Search skips it, logging a warning
// that names it: one bad value does not stop the searches of its
// namespace. Deleting the item repairs the namespace.
//
// # Cost
//
// Measured on a 2-core machine shared with other work (load average 3 to
// 5), redis-server 7.0 on loopback, random unit vectors of 256 numbers,
// the 10 best of each search (BenchmarkSearch, BenchmarkBytesPerItem;
// ranges of two runs). The baselines, measured in the same runs: one
// Redis round trip (PING) took 32 to 49 µs; a plain float32 dot-product
// loop in Go over the same vectors, 0.9 to 1.0 ms for 10,000 and 9.4 to
// 10 ms for 100,000.
//
//	                           10,000 items                100,000 items
//	cached, nothing written    1.2-1.5 ms (1.3-1.6x loop)  11-15 ms (1.1-1.6x loop)
//	one Put, then the search   1.3-1.9 ms (1.4-2.0x loop)  12 ms (1.2-1.3x loop)
//	cold (a new Store)         49-55 ms                    0.63-0.75 s
//	no cache (CacheBytes < 0)  53-68 ms                    0.63-0.74 s
//
// So a search of a cached namespace costs about what the scoring loop
// costs, plus one round trip; reading a namespace whole costs about 5 to
// 7 µs an item, once per process (or per eviction, or after more writes
// than the change log keeps).
//
// In the cache, such an item takes about 1.6 KB of Go heap, so the default
// CacheBytes holds about 160,000 of them.
//
// In Redis an item takes about 1,450 to 1,500 bytes (used_memory's growth
// over 10,000 and 100,000 items, each with a text of about 70 bytes and
// two metadata entries): 1,330 in the items hash, of which the vector is
// 1,024, and 104 to 113 in the key index that List reads.
package redis
