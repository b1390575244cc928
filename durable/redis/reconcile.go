package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

// The reconciler finds runs that need a worker and have lost the task or
// deadline that would bring them one, and puts it back. Tasks and
// deadlines live in the run's partition, its record in the run's own
// slot; on a Redis Cluster they may be on different nodes, and a node can
// lose what it held (a failover to a replica that lagged, a restart
// without persistence) while the other keeps it. A Cluster pipeline also
// sends its parts to their nodes at the same time, so a process that dies
// during Lease, Send or Commit may leave the record written and the
// deadline not.
//
// Each partition keeps an index of its runs that have not ended (active).
// A pass reads a page of it, from where the last pass stopped, and each
// run's record, and, from the record alone:
//   - a run held under a lease that has not expired gets its lease's
//     deadline again, which queues the run if the lease expires (see
//     verdict); so does a run with a wake time to come, its wake deadline;
//   - a run that needed a worker more than a visibility timeout ago (its
//     lease expired, its wake time passed, it was created, or sent a
//     message, and nobody holds it) is queued; enqueue does nothing if a
//     task waits for it already;
//   - the run's entry in the index of its status is written again;
//   - an entry whose run ended, or expired, leaves the index.
//
// Writing a deadline that stands is a no-op; queuing a run that needed
// nothing costs a worker a lease and a look at its history, no more.
//
// A partition whose reconciler key is missing has lost its keys (or is
// new): the pass scans the keyspace for the records of its runs, on every
// master, rebuilds the partition's indexes from them, reconciles each, and
// only then writes the key. That is the only full scan; it happens once
// per loss.

const (
	// DefaultReconcileInterval is how often a store that polls for tasks
	// reconciles each partition, unless WithReconcileInterval says.
	DefaultReconcileInterval = 30 * time.Second
	// reconcilePage is the most active runs one pass of the interval
	// looks at per partition.
	reconcilePage = 1000
	// scanCount is the COUNT of each SCAN of a recovery.
	scanCount = 1000
)

// WithReconcileInterval sets how often, in real time, a store that polls
// for tasks reconciles each partition (DefaultReconcileInterval if d is 0;
// a negative d turns the reconciler off). Of the stores sharing a prefix,
// one at a time reconciles a partition in each interval. A pass looks at
// up to 1,000 of the partition's runs that have not ended, so a lost task
// is found within (runs per partition / 1,000) intervals.
func WithReconcileInterval(d time.Duration) Option {
	return func(s *Store) {
		if d != 0 {
			s.reconcileEvery = d
		}
	}
}

// ReconcileStats says what a Reconcile did.
type ReconcileStats struct {
	// Checked is the number of runs whose records were read.
	Checked int
	// Queued is the number of runs queued that needed a worker and had
	// neither a task nor a deadline that would bring one.
	Queued int
	// Deadlines is the number of lease and wake deadlines that were
	// missing and were written again.
	Deadlines int
	// Forgotten is the number of index entries removed: their runs ended
	// or expired.
	Forgotten int
	// Recovered lists the partitions that had lost their keys and were
	// rebuilt from a scan of the runs' records.
	Recovered []int
	// Scanned is the number of run records the recovery scan found.
	Scanned int
}

func (st *ReconcileStats) add(o ReconcileStats) {
	st.Checked += o.Checked
	st.Queued += o.Queued
	st.Deadlines += o.Deadlines
	st.Forgotten += o.Forgotten
	st.Recovered = append(st.Recovered, o.Recovered...)
	st.Scanned += o.Scanned
}

// Reconcile reconciles every partition now, through all of its active
// runs, and returns what it did. It rebuilds, from a scan of the
// keyspace, the partitions that have lost their keys. Stores reconcile in
// the background by themselves (see WithReconcileInterval); Reconcile is
// for tools and tests. It is safe to run while workers run, and alongside
// another Reconcile.
func (s *Store) Reconcile(ctx context.Context) (ReconcileStats, error) {
	return s.reconcile(ctx, s.parts, -1)
}

// reconcile reconciles parts: from each one's cursor, up to page runs (all
// of them if page < 0).
func (s *Store) reconcile(ctx context.Context, parts []*partition, page int) (ReconcileStats, error) {
	var stats ReconcileStats
	if len(parts) == 0 {
		return stats, nil
	}
	// Each cursor's own error is looked at below; a missing key is one.
	cursors := make([]*goredis.StringCmd, len(parts))
	_, _ = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, part := range parts {
			cursors[i] = p.HGet(ctx, part.keys.reconciler(), "cursor")
		}
		return nil
	})
	var lost []*partition
	var errs []error
	for i, part := range parts {
		switch err := cursors[i].Err(); {
		case errors.Is(err, goredis.Nil):
			lost = append(lost, part)
		case err != nil:
			errs = append(errs, fmt.Errorf("partition %d: %w", part.n, err))
		}
	}
	if len(lost) > 0 {
		st, err := s.recover(ctx, lost)
		stats.add(st)
		if err != nil {
			errs = append(errs, err)
		}
	}
	for i, part := range parts {
		if cursors[i].Err() != nil {
			continue // lost (and recovered above) or unreachable
		}
		var from int64 // a whole pass starts at the beginning
		if page >= 0 {
			from, _ = strconv.ParseInt(cursors[i].Val(), 10, 64)
		}
		st, err := s.reconcileActive(ctx, part, from, page)
		stats.add(st)
		if err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", part.n, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return stats, fmt.Errorf("reconcile: %w", err)
	}
	return stats, nil
}

// reconcileActive reconciles the partition's active runs from rank from,
// a page at a time, up to limit runs (all if limit < 0), and saves where
// it stopped.
func (s *Store) reconcileActive(ctx context.Context, part *partition, from int64, limit int) (ReconcileStats, error) {
	var stats ReconcileStats
	for limit < 0 || stats.Checked < limit {
		n := int64(reconcilePage)
		if limit >= 0 {
			n = min(n, int64(limit-stats.Checked))
		}
		entries, err := s.client.ZRangeWithScores(ctx, part.keys.active(), from, from+n-1).Result()
		if err != nil {
			return stats, err
		}
		runs := make([]candidate, len(entries))
		for i, z := range entries {
			id, _ := z.Member.(string)
			runs[i] = candidate{id: id, created: z.Score}
		}
		st, err := s.reconcileRuns(ctx, part, runs)
		stats.add(st)
		if err != nil {
			return stats, err
		}
		// Entries removed for runs that ended moved the rest back.
		from += int64(len(entries) - st.Forgotten)
		if int64(len(entries)) < n {
			from = 0 // round again next time
		}
		if err := s.client.HSet(ctx, part.keys.reconciler(), "cursor", from).Err(); err != nil {
			return stats, err
		}
		if from == 0 {
			return stats, nil
		}
	}
	return stats, nil
}

// candidate is a run for reconcileRuns: its id, its score in the active
// index (0 if unknown) and its record, if the caller read it.
type candidate struct {
	id      string
	created float64
	rec     map[string]string
}

// reconcileRuns reconciles runs of a partition. A run's deadline or task is
// written only where no other part of the store could still be about to
// write it: a task is queued only for a run whose lease expired, whose
// wake time passed or that was created or sent a message more than a
// visibility timeout ago (a task delivered since is taken within that
// time, or delivered again).
func (s *Store) reconcileRuns(ctx context.Context, part *partition, runs []candidate) (ReconcileStats, error) {
	var stats ReconcileStats
	if len(runs) == 0 {
		return stats, nil
	}
	fields := make([]*goredis.MapStringStringCmd, len(runs))
	inboxes := make([]*goredis.IntCmd, len(runs))
	var redisNow *goredis.TimeCmd
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, r := range runs {
			rk := s.runKeys(r.id)
			if r.rec == nil {
				fields[i] = p.HGetAll(ctx, rk.run)
			}
			inboxes[i] = p.XLen(ctx, rk.inbox)
		}
		// Inbox entry ids are on Redis's clock.
		redisNow = p.Time(ctx)
		return nil
	})
	if err != nil {
		return stats, fmt.Errorf("read records: %w", err)
	}
	now := millis(s.clock.Now())
	grace := s.visibility.Milliseconds()
	sentBefore := redisNow.Val().UnixMilli() - grace

	var deadlines []*goredis.IntCmd
	var queued []*goredis.Cmd
	var writes []func(p goredis.Pipeliner)
	var earliest int64
	deadline := func(kind byte, id, extra string, at int64) {
		member := deadlineMember(kind, id, extra)
		writes = append(writes, func(p goredis.Pipeliner) {
			// GT: never moves a deadline that a renewal moved later.
			deadlines = append(deadlines, p.ZAddGT(ctx, part.keys.deadlines, goredis.Z{Score: float64(at), Member: member}))
		})
		if earliest == 0 || at < earliest {
			earliest = at
		}
	}
	var forget []any
	for i, r := range runs {
		rec := r.rec
		if rec == nil {
			rec = fields[i].Val()
		}
		stats.Checked++
		if len(rec) == 0 {
			// Expired, or CreateRun has not written it yet: only an old
			// entry goes.
			if r.created > 0 && s.clock.Now().Sub(time.UnixMicro(int64(r.created))) > forgetMissingAfter {
				forget = append(forget, r.id)
			}
			continue
		}
		id, status := r.id, backend.Status(rec["st"])
		if status.Terminal() {
			forget = append(forget, id)
			continue
		}
		if created := rec["cr"]; created != "" && status != "" {
			writes = append(writes, func(p goredis.Pipeliner) { zadd(ctx, p, part.keys.status(string(status)), created, id, false) })
		}
		if rec["aw"] != "" {
			// NX: a commit's own score stays.
			at := micros(s.clock.Now())
			writes = append(writes, func(p goredis.Pipeliner) { zadd(ctx, p, part.keys.awaiting(), at, id, true) })
		}
		held := rec["held"] == "1"
		lexp, _ := strconv.ParseInt(rec["lexp"], 10, 64)
		wake, _ := strconv.ParseInt(rec["wake"], 10, 64)
		created, _ := strconv.ParseInt(rec["cr"], 10, 64)
		sent, _, _ := strings.Cut(rec["sent"], "-")
		sentAt, _ := strconv.ParseInt(sent, 10, 64)
		if held && lexp > now {
			deadline(kindLease, id, rec["lw"], lexp)
		}
		if wake > now {
			deadline(kindWake, id, rec["wt"], wake)
		}
		stuck := false
		switch {
		case status.Dormant():
		case held:
			stuck = lexp < now-grace
		case wake > 0 && wake < now-grace:
			stuck = true
		case status == backend.StatusPending:
			stuck = created/1000 < now-grace
		case inboxes[i].Val() > 0:
			stuck = sentAt < sentBefore
		}
		if stuck {
			writes = append(writes, func(p goredis.Pipeliner) {
				queued = append(queued, s.scripts.enqueue.EvalSha(ctx, p, part.keys.enqueueKeys(), id, ""))
			})
		}
	}
	if len(forget) > 0 {
		writes = append(writes, func(p goredis.Pipeliner) { p.ZRem(ctx, part.keys.active(), forget...) })
		stats.Forgotten = len(forget)
	}
	if len(writes) > 0 {
		_, err := s.pipe(ctx, func(p goredis.Pipeliner) {
			deadlines, queued = deadlines[:0], queued[:0]
			for _, w := range writes {
				w(p)
			}
		})
		if err != nil {
			return stats, fmt.Errorf("write deadlines and tasks: %w", err)
		}
	}
	for _, d := range deadlines {
		stats.Deadlines += int(d.Val())
	}
	for _, q := range queued {
		if n, _ := q.Int(); n == 1 {
			stats.Queued++
		}
	}
	if earliest > 0 {
		s.arm(part, time.UnixMilli(earliest))
	}
	return stats, nil
}

// recover rebuilds the indexes of partitions that lost their keys from
// the records of their runs, found by a scan of every master, reconciles
// those runs, and then marks each partition as reconciled.
func (s *Store) recover(ctx context.Context, lost []*partition) (ReconcileStats, error) {
	stats := ReconcileStats{}
	want := make(map[int]*partition, len(lost))
	for _, p := range lost {
		want[p.n] = p
	}
	var mu sync.Mutex // over stats: ForEachMaster scans the masters at the same time
	pattern := globEscape(s.prefix) + ":{r:*}:run"
	keyPrefix, keySuffix := s.prefix+":{r:", "}:run"
	found := func(ctx context.Context, c *goredis.Client) error {
		var cursor uint64
		for {
			keys, next, err := c.ScanType(ctx, cursor, pattern, scanCount, "hash").Result()
			if err != nil {
				return fmt.Errorf("scan %s: %w", c.Options().Addr, err)
			}
			byPart := map[int][]string{}
			for _, key := range keys {
				if !strings.HasPrefix(key, keyPrefix) || !strings.HasSuffix(key, keySuffix) || len(key) < len(keyPrefix)+len(keySuffix) {
					continue
				}
				id := key[len(keyPrefix) : len(key)-len(keySuffix)]
				if n := s.partitionOf(id); want[n] != nil {
					byPart[n] = append(byPart[n], id)
				}
			}
			for n, ids := range byPart {
				st, err := s.reindex(ctx, want[n], ids)
				mu.Lock()
				stats.add(st)
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	switch c := s.client.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(ctx, found)
	case *goredis.Client:
		err = found(ctx, c)
	default:
		err = fmt.Errorf("cannot scan through a %T", s.client)
	}
	if err != nil {
		return stats, fmt.Errorf("recover partitions: %w", err)
	}
	_, err = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, part := range lost {
			p.HSet(ctx, part.keys.reconciler(), "cursor", 0)
		}
		return nil
	})
	if err != nil {
		return stats, fmt.Errorf("recover partitions: %w", err)
	}
	for _, part := range lost {
		stats.Recovered = append(stats.Recovered, part.n)
	}
	return stats, nil
}

// reindex writes the index entries of runs of a partition from their
// records, and reconciles those that have not ended.
func (s *Store) reindex(ctx context.Context, part *partition, ids []string) (ReconcileStats, error) {
	records := make([]*goredis.MapStringStringCmd, len(ids))
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			records[i] = p.HGetAll(ctx, s.runKeys(id).run)
		}
		return nil
	})
	if err != nil {
		return ReconcileStats{}, fmt.Errorf("read records: %w", err)
	}
	var active []candidate
	_, err = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			rec := records[i].Val()
			info, err := decodeRecord(rec)
			if len(rec) == 0 || err != nil {
				continue // gone since the scan, or not a record
			}
			created := micros(info.CreatedAt)
			zadd(ctx, p, part.keys.runs(), created, id, true)
			zadd(ctx, p, part.keys.status(string(info.Status)), created, id, true)
			if info.Workflow != "" {
				zadd(ctx, p, part.keys.workflow(info.Workflow), created, id, true)
			}
			if !info.Status.Terminal() {
				zadd(ctx, p, part.keys.active(), created, id, true)
				active = append(active, candidate{id: id, rec: rec})
			}
		}
		return nil
	})
	if err != nil {
		return ReconcileStats{}, fmt.Errorf("write indexes: %w", err)
	}
	stats, err := s.reconcileRuns(ctx, part, active)
	stats.Scanned = len(ids)
	return stats, err
}

// runReconciler reconciles the partitions, a page each, at the end of
// every interval from the first Poll until Close. A partition that another store is
// reconciling in this interval (it holds the partition's reconciling key)
// is skipped.
func (s *Store) runReconciler() {
	defer s.wg.Done()
	every := s.reconcileEvery
	t := time.NewTicker(every)
	defer t.Stop()
	owner := randomID()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(every, opTimeout))
		var mine []*partition
		for _, p := range s.parts {
			ok, err := s.client.SetNX(ctx, p.keys.reconciling(), owner, every).Result()
			if err != nil && !s.closed() {
				s.logReconcileError(err, "partition", p.n)
			}
			if ok {
				mine = append(mine, p)
			}
		}
		stats, err := s.reconcile(ctx, mine, reconcilePage)
		cancel()
		switch {
		case err != nil && !s.closed():
			s.logReconcileError(err)
		case stats.Queued > 0 || len(stats.Recovered) > 0:
			s.log.Info("reconciled", "queued", stats.Queued, "deadlines", stats.Deadlines,
				"recovered_partitions", stats.Recovered, "scanned", stats.Scanned)
		}
	}
}
