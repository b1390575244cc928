package redis

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// Key layout (version Layout, see layout.go). Every key a script touches
// carries the hash tag of one run or of one partition, so each script's
// keys hash to one Redis Cluster slot:
//
//	<prefix>:layout                  string: the layout version of the prefix's keys
//	<prefix>:{r:<run id>}:run        hash: the run's record, lease and bookkeeping
//	<prefix>:{r:<run id>}:history    list: the current history, the event at position i at index i-1
//	<prefix>:{r:<run id>}:inbox      stream: messages sent to the run; none while there are none
//	<prefix>:{r:<run id>}:changes    stream (one entry), while a WatchRun watches the run and watchKeep
//	                                 after: an entry from each commit that moves the run on
//	<prefix>:{r:<run id>}:commits    stream (one entry), while a WatchCommits watches the run and
//	                                 watchKeep after: an entry from each commit
//	<prefix>:{r:<run id>}:feed       stream, capped: the run's progress feed (backend.Feed)
//	<prefix>:{r:<run id>}:archive    hash: the run's blobs by key (backend.Archive), each field written once
//	<prefix>:{r:<run id>}:awaiting   string, while the run has one: its RunInfo.Awaiting (a key of its
//	                                 own: in the record, a value over 64 bytes would turn the hash
//	                                 from a listpack into a hash table for good, a kilobyte more)
//	<prefix>:{<p>}:tasks             stream with consumer group "workers": the task queue
//	<prefix>:{<p>}:deadlines         sorted set of deadline members, by due time (ms)
//	<prefix>:{<p>}:queued            set: runs with a task that waits in the stream
//	<prefix>:{<p>}:runs              sorted set: the partition's runs, by creation time (µs)
//	<prefix>:{<p>}:status:<status>   sorted set: its runs that had that status, by creation time
//	<prefix>:{<p>}:workflow:<name>   sorted set: its runs of that workflow, by creation time
//	<prefix>:{<p>}:active            sorted set: its runs not known to have ended, by creation time
//	<prefix>:{<p>}:awaiting          sorted set: its runs whose record has an Awaiting payload, by the
//	                                 time (µs) of the last commit that saved one
//	<prefix>:{<p>}:reconciler        hash: where the reconciler is in active; its absence means the
//	                                 partition lost its keys (see reconcile.go)
//	<prefix>:{<p>}:reconciling       string with an expiry: the reconciler pass that holds the partition
//	<prefix>:{q:<queue>}:attempts    stream with consumer group "workers": an activity task queue
//	<prefix>:{q:<queue>}:deadlines   sorted set: entry ids of delivered attempts, by visibility deadline (ms)
//
// A run's partition is a stable hash of its id (partitionOf), and <p> is
// the partition's hash tag: "p:<n>", or "p:<n>:<k>" for the least k that
// puts the tag's slot in the middle half of the partition's share of the
// 16384 Cluster slots (partitionTag). A cluster whose masters hold equal
// runs of slots, as redis-cli --cluster create gives them, so holds an
// equal number of partitions on each master when the number of partitions
// is a multiple of the number of masters.
//
// No key outside a run's slot and its partition's slot is written for the
// run: the indexes that ListRuns reads are per partition, so a Cluster
// node that is down stops only the runs whose slot or partition it holds.
// (A store reads the layout key once, in its first call, and goes on
// without if it cannot: see checkLayout.)
//
// The history is a list, not a stream: a stream's first node takes
// stream-node-max-bytes (4 KB) of memory however little it holds, a list
// costs its entries and about a hundred bytes. Its position is its
// length (LLEN), which a commit that appends checks against the record's
// count, so an entry written outside the store is found there, and one
// that is not the event of its position by the decoder.
//
// The feed may exist before the run's record (Publish does not need one),
// so CreateRun, which clears what an expired run left behind, leaves it
// alone; it expires with the run's other keys (see Publish).
//
// The archive expires with the run's other keys too: the commit that ends a
// run sets its expiry on it, and PutBlobs on a run that ended gives it the
// record's. CreateRun deletes what an expired run left of it.
//
// The index sets are hints read by ListRuns and the reconciler outside
// scripts, and repaired there: the run's record is the truth.
//
// Run ids and queue names are used as they are. One that holds a "}" ends
// its hash tag early, at the same place in each of its keys, so they still
// share a slot (with those of other ids that begin alike).

// group is the consumer group of every task stream.
const group = "workers"

// runKeys are the keys of one run, all with the run's hash tag.
type runKeys struct {
	run, history, inbox, changes, feed, archive, commits, awaiting string
}

func (s *Store) runKeys(runID string) runKeys {
	base := s.prefix + ":{r:" + runID + "}:"
	return runKeys{run: base + "run", history: base + "history", inbox: base + "inbox", changes: base + "changes",
		feed: base + "feed", archive: base + "archive", commits: base + "commits", awaiting: base + "awaiting"}
}

// list returns the keys that create takes.
func (k runKeys) list() []string {
	return []string{k.run, k.history, k.inbox, k.changes, k.archive, k.awaiting}
}

// commitKeys returns the keys that commit takes: those of list, the feed,
// which expire with the record when the run ends, and commits.
func (k runKeys) commitKeys() []string {
	return []string{k.run, k.history, k.inbox, k.changes, k.feed, k.archive, k.commits, k.awaiting}
}

// archiveKeys returns the keys that the archive script takes.
func (k runKeys) archiveKeys() []string { return []string{k.run, k.archive} }

// recordAndInbox returns the keys that lease and send take.
func (k runKeys) recordAndInbox() []string { return []string{k.run, k.inbox} }

// partKeys are the keys of one partition, all with the partition's hash tag.
type partKeys struct {
	tasks, deadlines, queued string
	base                     string // "<prefix>:{<tag>}:"
}

func (s *Store) partKeys(n int) partKeys {
	base := s.prefix + ":{" + partitionTag(n, len(s.parts)) + "}:"
	return partKeys{tasks: base + "tasks", deadlines: base + "deadlines", queued: base + "queued",
		base: base}
}

// runs, status, workflow, active and awaiting are the partition's indexes.
func (k partKeys) runs() string                { return k.base + "runs" }
func (k partKeys) status(st string) string     { return k.base + "status:" + st }
func (k partKeys) workflow(name string) string { return k.base + "workflow:" + name }
func (k partKeys) active() string              { return k.base + "active" }
func (k partKeys) awaiting() string            { return k.base + "awaiting" }

// reconciler and reconciling are the reconciler's keys (see reconcile.go).
func (k partKeys) reconciler() string  { return k.base + "reconciler" }
func (k partKeys) reconciling() string { return k.base + "reconciling" }

// clusterSlots is the number of Redis Cluster hash slots.
const clusterSlots = 16384

// partitionTag returns the hash tag of partition n of count: "p:<n>" if
// its slot is in the middle half of the partition's share of the slots
// (the slots from n*16384/count to (n+1)*16384/count), else "p:<n>:<k>"
// for the least k whose slot is. It depends on n and count only, so every
// store with the same number of partitions agrees on it.
func partitionTag(n, count int) string {
	first, last := n*clusterSlots/count, (n+1)*clusterSlots/count
	lo, hi := first+(last-first)/4, first+3*(last-first)/4
	if hi <= lo {
		hi = lo + 1
	}
	tag := "p:" + strconv.Itoa(n)
	for k := 0; ; k++ {
		if sl := keySlot(tag); sl >= lo && sl < hi {
			return tag
		}
		tag = "p:" + strconv.Itoa(n) + ":" + strconv.Itoa(k)
	}
}

// keySlot is the Redis Cluster slot of a hash tag (or of a key without
// one): CRC16 (XMODEM) modulo 16384.
func keySlot(tag string) int {
	var crc uint16
	for i := 0; i < len(tag); i++ {
		crc ^= uint16(tag[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % clusterSlots
}

// list returns the keys in the order the partition scripts take them,
// except enqueue, which takes enqueueKeys.
func (k partKeys) list() []string { return []string{k.tasks, k.deadlines, k.queued} }

func (k partKeys) enqueueKeys() []string { return []string{k.tasks, k.queued, k.deadlines} }

// queueKeys are the keys of one activity task queue, all with the queue's
// hash tag.
type queueKeys struct {
	attempts, deadlines string
}

func (s *Store) queueKeys(queue string) queueKeys {
	base := s.prefix + ":{q:" + queue + "}:"
	return queueKeys{attempts: base + "attempts", deadlines: base + "deadlines"}
}

// list returns the keys in the order the activity queue scripts take them.
func (k queueKeys) list() []string { return []string{k.attempts, k.deadlines} }

// partitionOf returns the partition of a run: a stable hash of its id.
func (s *Store) partitionOf(runID string) int {
	h := fnv.New32a()
	h.Write([]byte(runID))
	return int(h.Sum32() % uint32(len(s.parts)))
}

// Deadline members name a deadline in a partition's deadlines set:
// "<kind>:<length of run id>:<run id>:<extra>". The length makes them
// unambiguous whatever the run id holds; lib.lua's parse reads them.
//
// Wake and lease deadlines are hints written before the script that makes
// them true, so they fire only if the run's record still says so when they
// come due (see take.lua and Store.settle); the others fire as they are.
const (
	kindWake    = 'w' // the run's wake time; extra: the token of the lease that set it
	kindLease   = 'l' // a lease's expiry; extra: the worker that asked for the lease
	kindTask    = 't' // a delivered task's visibility timeout; extra: the stream entry id
	kindCreated = 'c' // CreateRun's safety net; extra: a random id
)

func deadlineMember(kind byte, runID, extra string) string {
	return string(kind) + ":" + strconv.Itoa(len(runID)) + ":" + runID + ":" + extra
}

// parseMember splits a deadline member; ok is false if it is malformed.
func parseMember(m string) (kind byte, runID, extra string, ok bool) {
	if len(m) < 2 || m[1] != ':' {
		return 0, "", "", false
	}
	rest := m[2:]
	i := strings.IndexByte(rest, ':')
	if i < 0 {
		return 0, "", "", false
	}
	n, err := strconv.Atoi(rest[:i])
	rest = rest[i+1:]
	if err != nil || n < 0 || n+1 > len(rest) || rest[n] != ':' {
		return 0, "", "", false
	}
	return m[0], rest[:n], rest[n+1:], true
}
