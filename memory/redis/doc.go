// Package redis is a memory.Store in Redis: long-term memory that runs on
// a plain Redis 6.2 or later (tested with 7.0), without modules, and on
// Redis Cluster.
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
// Measured on a 2-core shared machine, with redis-server 7.0 on loopback,
// vectors of 256 numbers: see BenchmarkSearch and BenchmarkBytesPerItem.
package redis
