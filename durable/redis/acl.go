package redis

import (
	"strings"
)

// ACLCommands returns the Redis commands a Store sends, and go-redis's
// client with it, in the syntax of ACL SETUSER (a subcommand as
// command|subcommand), sorted:
//
//   - the commands of the store's scripts (lua/*.lua) and those it sends
//     itself (ZADD, HGETALL, XREADGROUP, ...), on its keys only;
//   - EVAL, EVALSHA and SCRIPT LOAD, to run the scripts;
//   - what go-redis sends to set up a connection: SELECT for a database
//     other than 0; on Redis Cluster, CLUSTER SLOTS, and COMMAND, whose
//     answer tells the cluster client where each command's keys are (it
//     asks again before every command while it is denied). HELLO and AUTH
//     need no permission. go-redis also sends CLIENT SETINFO, and goes on
//     if it is denied; Redis 7.2 and newer log the denial in ACL LOG (add
//     +client|setinfo there to keep it out; Redis 7.0 knows no such
//     command and refuses the rule);
//   - PING, which the cairn tool sends to check that Redis answers;
//   - SCAN, TIME and SET, for the reconciler (see Store.Reconcile): SCAN
//     only when a partition lost its keys.
//
// A test runs the conformance suite as a user with ACLRules and checks
// that ACL LOG records no denial, so the list is complete; another checks
// that README.md's ACL SETUSER line is ACLRules("cairn").
func ACLCommands() []string {
	return []string{
		"cluster|slots", "command",
		"del",
		"eval", "evalsha",
		"exists",
		"get",
		"hget", "hgetall", "hincrby", "hmget", "hset", "hsetnx",
		"llen", "lrange",
		"persist", "pexpire", "ping", "pttl",
		"rpush",
		"sadd", "scan", "script|load", "select", "set", "srem", "time", "type",
		"xack", "xadd", "xautoclaim", "xdel", "xgroup|create", "xgroup|delconsumer", "xinfo|consumers", "xinfo|groups",
		"xlen", "xrange", "xread", "xreadgroup", "xrevrange",
		"zadd", "zrange", "zrangebyscore", "zrem", "zrevrange", "zscore",
	}
}

// ACLRules returns the ACL SETUSER rules of a least-privilege user for a
// store with the key prefix (DefaultPrefix if ""): the keys of the prefix
// only, no Pub/Sub channel (the store uses none), and ACLCommands only.
// The rules reset the user's keys, channels and commands first, so they
// may be applied to an existing user. Give them after the user's name,
// "on" and its password:
//
//	ACL SETUSER cairn-worker on >PASSWORD resetkeys ~cairn:* resetchannels -@all +cluster|slots +del ...
func ACLRules(prefix string) []string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	rules := []string{"resetkeys", "~" + globEscape(prefix) + ":*", "resetchannels", "-@all"}
	for _, c := range ACLCommands() {
		rules = append(rules, "+"+c)
	}
	return rules
}

// globEscape escapes the characters that mean something in a Redis glob
// pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
