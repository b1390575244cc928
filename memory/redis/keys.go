package redis

// Key layout. A namespace's keys all carry the namespace as their hash
// tag, so every script touches one Redis Cluster slot, and namespaces
// spread over a cluster's masters:
//
//	<prefix>:{<namespace>}:items  hash: key -> the encoded item (codec.go)
//	<prefix>:{<namespace>}:keys   sorted set: every key, score 0, for List in key order
//	<prefix>:{<namespace>}:meta   hash: dim (the vectors' length), ver (a count of
//	                              writes), tag (8 random bytes naming the last write)
//	<prefix>:{<namespace>}:log    list: the last writes, each its tag then its key,
//	                              at most Options.ChangeLog and the items' count + 16
//
// Every write runs one script (lua/) over the four keys, so a write, its
// dimension check and its bookkeeping are atomic. The delete of a
// namespace's last item removes all four: an empty namespace leaves
// nothing behind, and has no dimension.
//
// Namespaces cannot hold "{" or "}" (memory.ValidNamespace), so the hash
// tag is the namespace. A prefix with braces still keeps a namespace's
// keys in one slot, as they all begin with it, but may put every
// namespace in the same one.

// DefaultPrefix begins every key unless Options.Prefix says otherwise.
const DefaultPrefix = "cairn:mem"

// nsKeys are the keys of one namespace.
type nsKeys struct {
	items, keys, meta, log string
}

func (s *Store) keysOf(ns string) nsKeys {
	base := s.prefix + ":{" + ns + "}:"
	return nsKeys{items: base + "items", keys: base + "keys", meta: base + "meta", log: base + "log"}
}

// writes returns the keys that put.lua and delete.lua take.
func (k nsKeys) writes() []string { return []string{k.items, k.keys, k.meta, k.log} }
