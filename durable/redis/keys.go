package redis

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// Key layout. Every key a script touches carries the hash tag of one run
// or of one partition, so each script's keys hash to one Redis Cluster slot:
//
//	<prefix>:{r:<run id>}:run        hash: the run's record, lease and bookkeeping
//	<prefix>:{r:<run id>}:history    stream: the current history, entry ids <position>-0
//	<prefix>:{r:<run id>}:inbox      stream: messages sent to the run
//	<prefix>:{r:<run id>}:changes    stream (one entry): a new entry with every commit, for WatchRun
//	<prefix>:{r:<run id>}:feed       stream, capped: the run's progress feed (backend.Feed)
//	<prefix>:{r:<run id>}:archive    hash: the run's blobs by key (backend.Archive), each field written once
//	<prefix>:{p:<n>}:tasks           stream with consumer group "workers": the task queue
//	<prefix>:{p:<n>}:deadlines       sorted set of deadline members, by due time (ms)
//	<prefix>:{p:<n>}:queued          set: runs with a task that waits in the stream
//	<prefix>:{q:<queue>}:attempts    stream with consumer group "workers": an activity task queue
//	<prefix>:{q:<queue>}:deadlines   sorted set: entry ids of delivered attempts, by visibility deadline (ms)
//	<prefix>:runs                    sorted set: every run, by creation time (µs)
//	<prefix>:status:<status>         sorted set: runs that had that status, by creation time
//	<prefix>:workflow:<name>         sorted set: runs of that workflow, by creation time
//
// The feed may exist before the run's record (Publish does not need one),
// so CreateRun, which clears what an expired run left behind, leaves it
// alone; it expires with the run's other keys (see Publish).
//
// The archive expires with the run's other keys too: the commit that ends a
// run sets its expiry on it, and PutBlobs on a run that ended gives it the
// record's. CreateRun deletes what an expired run left of it.
//
// The three index sets are hints read by ListRuns outside scripts, and
// repaired there: the run's record is the truth.
//
// Run ids and queue names are used as they are. One that holds a "}" ends
// its hash tag early, at the same place in each of its keys, so they still
// share a slot (with those of other ids that begin alike).

// group is the consumer group of every task stream.
const group = "workers"

// runKeys are the keys of one run, all with the run's hash tag.
type runKeys struct {
	run, history, inbox, changes, feed, archive string
}

func (s *Store) runKeys(runID string) runKeys {
	base := s.prefix + ":{r:" + runID + "}:"
	return runKeys{run: base + "run", history: base + "history", inbox: base + "inbox", changes: base + "changes",
		feed: base + "feed", archive: base + "archive"}
}

// list returns the keys that create takes.
func (k runKeys) list() []string { return []string{k.run, k.history, k.inbox, k.changes, k.archive} }

// commitKeys returns the keys that commit takes: those of list and the
// feed, which expire with the record when the run ends.
func (k runKeys) commitKeys() []string {
	return []string{k.run, k.history, k.inbox, k.changes, k.feed, k.archive}
}

// archiveKeys returns the keys that the archive script takes.
func (k runKeys) archiveKeys() []string { return []string{k.run, k.archive} }

// recordAndInbox returns the keys that lease and send take.
func (k runKeys) recordAndInbox() []string { return []string{k.run, k.inbox} }

// partKeys are the keys of one partition, all with the partition's hash tag.
type partKeys struct {
	tasks, deadlines, queued string
}

func (s *Store) partKeys(n int) partKeys {
	base := s.prefix + ":{p:" + strconv.Itoa(n) + "}:"
	return partKeys{tasks: base + "tasks", deadlines: base + "deadlines", queued: base + "queued"}
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

func (s *Store) runsIndex() string              { return s.prefix + ":runs" }
func (s *Store) statusIndex(st string) string   { return s.prefix + ":status:" + st }
func (s *Store) workflowIndex(wf string) string { return s.prefix + ":workflow:" + wf }

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
