package redis

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Lease implements backend.Store in one round trip. A lease is expired
// once the clock reaches its Expires; times are kept in milliseconds. ttl
// must be at least a millisecond.
//
// With the lease script it pipelines the lease's expiry deadline, so that
// the run is queued if its worker dies holding the lease. The script's
// reply decides, as in Commit. A worker that
// does not get the lease leaves a deadline too; when it comes due, the
// store reads the run's record and drops it.
func (s *Store) Lease(ctx context.Context, runID, worker string, ttl time.Duration) (backend.Lease, error) {
	if ttl < time.Millisecond {
		return backend.Lease{}, fmt.Errorf("lease %s: ttl %v is less than a millisecond", runID, ttl)
	}
	rk, part := s.runKeys(runID), s.partFor(runID)
	now := s.clock.Now()
	expires := now.Add(ttl)
	var res *goredis.Cmd
	cmds, pipeErr := s.batch(ctx, func(p goredis.Pipeliner) {
		p.ZAdd(ctx, part.keys.deadlines, goredis.Z{Score: float64(millis(expires)), Member: deadlineMember(kindLease, runID, worker)})
		res = s.scripts.lease.EvalSha(ctx, p, rk.recordAndInbox(), worker, millis(now), ttl.Milliseconds())
	})
	if cmds == nil {
		return backend.Lease{}, fmt.Errorf("lease %s: %w", runID, pipeErr)
	}
	if err := res.Err(); err != nil {
		return backend.Lease{}, fmt.Errorf("lease %s: %w", runID, err)
	}
	if pipeErr != nil {
		// The partition's node may be down: the reconciler writes the
		// lease's deadline again if the lease outlives it.
		s.log.Warn("lease: deadline not written", "run_id", runID, "partition", part.n, "err", pipeErr)
	}
	s.arm(part, expires)
	r := newReply(res.Val())
	switch code := r.str(0); {
	case r.err != nil:
		return backend.Lease{}, fmt.Errorf("lease %s: %w", runID, r.err)
	case code == "notfound":
		return backend.Lease{}, fmt.Errorf("lease: %w: %s", backend.ErrRunNotFound, runID)
	case code == "held":
		return backend.Lease{}, fmt.Errorf("lease %s: %w: %s", runID, backend.ErrLeaseHeld, r.str(1))
	case code != "ok":
		return backend.Lease{}, fmt.Errorf("lease %s: unexpected script reply %q", runID, code)
	}
	lease := backend.Lease{RunID: runID, Worker: worker, Token: r.int(1), Expires: expires, Pending: int(r.int(2)),
		TakenOver: r.int(3) == 1}
	if r.err != nil {
		return backend.Lease{}, fmt.Errorf("lease %s: %w", runID, r.err)
	}
	return lease, nil
}

// streamID matches a stream entry id; Commit ignores consumed ids that do
// not, as they cannot be in the inbox.
var streamID = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// Commit implements backend.Store. A lease that expired is still current
// until another Lease call takes it. Consumed ids not in the inbox are
// ignored. A commit that go-redis sends again after a lost reply is
// recognised and applied once.
//
// It costs one round trip: the commit script, pipelined after the run's
// entry in its partition's index of its new status (scored by
// c.Run.CreatedAt, which the engine passes on from the record), the
// deadline of Run.WakeAt, and, if c.Run.Awaiting is set, its entry in the
// partition's awaiting index (ListAwaiting drops entries whose record has
// no Awaiting any more). The script's reply decides: a commit that was
// written returns nil even if the index entry or the deadline could not
// be (the partition's Cluster node is down); the reconciler writes them
// again.
// The deadline is named after the lease's token, so a fenced writer cannot
// move or remove the deadline of the run's current holder; a deadline that
// no longer stands (its wake time was cleared or replaced by a later
// holder) is dropped when it comes due, after a look at the record. A
// second round trip follows only when there is more to queue or repair:
// the lease was released with messages left in the inbox, c.Run.CreatedAt
// was not the run's, or the commit was rejected after writing a deadline.
func (s *Store) Commit(ctx context.Context, c backend.Commit) error {
	runID, token := c.Lease.RunID, strconv.FormatInt(c.Lease.Token, 10)
	if runID == "" {
		return fmt.Errorf("commit: lease has no run id")
	}
	rk, part := s.runKeys(runID), s.partFor(runID)
	now := s.clock.Now()
	status := string(c.Run.Status)
	var wake int64
	if !c.Run.WakeAt.IsZero() {
		wake = millis(c.Run.WakeAt)
	}
	wakeMember := deadlineMember(kindWake, runID, token)
	args := []any{token, c.Expect, flag(c.NewHistory), flag(c.Release), encodeTime(now),
		status, encodeState(c.Run), wake, s.retention.Milliseconds(), randomID(), len(c.Events), string(c.Run.Awaiting)}
	for _, e := range c.Events {
		args = append(args, e)
	}
	for _, id := range c.Consumed {
		if streamID.MatchString(id) {
			args = append(args, id)
		}
	}
	hint := ""
	if !c.Run.CreatedAt.IsZero() && status != "" {
		hint = micros(c.Run.CreatedAt)
	}

	var res *goredis.Cmd
	cmds, pipeErr := s.batch(ctx, func(p goredis.Pipeliner) {
		if hint != "" {
			zadd(ctx, p, part.keys.status(status), hint, runID, false)
		}
		if wake > 0 {
			p.ZAdd(ctx, part.keys.deadlines, goredis.Z{Score: float64(wake), Member: wakeMember})
		}
		if len(c.Run.Awaiting) > 0 {
			// Scored by this commit's time, so that ListAwaiting, which
			// drops the entry of a record without Awaiting only if its
			// score is the one it read, never drops this commit's.
			p.ZAdd(ctx, part.keys.awaiting(), goredis.Z{Score: float64(now.UnixMicro()), Member: runID})
		}
		res = s.scripts.commit.EvalSha(ctx, p, rk.commitKeys(), args...)
	})
	if cmds == nil {
		return fmt.Errorf("commit %s: %w", runID, pipeErr)
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("commit %s: %w", runID, historyErr(err))
	}
	if pipeErr != nil {
		// The commit is written, its partition's index entry or wake
		// deadline is not: the partition's node may be down. The
		// reconciler puts them back (see reconcile.go).
		s.log.Warn("commit: index or deadline not written", "run_id", runID, "partition", part.n, "err", pipeErr)
	}

	// What the reply asks for in a second round trip.
	var after []func(p goredis.Pipeliner)
	r := newReply(res.Val())
	code := r.str(0)
	var rejected error
	switch code {
	case "ok":
		if c.Release && r.int(1) > 0 && !c.Run.Status.Dormant() {
			after = append(after, func(p goredis.Pipeliner) {
				s.scripts.enqueue.EvalSha(ctx, p, part.keys.enqueueKeys(), runID, "")
			})
		}
		if created := r.str(3); status != "" && created != hint {
			after = append(after, func(p goredis.Pipeliner) { zadd(ctx, p, part.keys.status(status), created, runID, false) })
		}
	case "notfound":
		rejected = fmt.Errorf("commit: %w: %s", backend.ErrRunNotFound, runID)
	case "fenced":
		rejected = fmt.Errorf("commit %s: %w: token %d", runID, backend.ErrFenced, c.Lease.Token)
	case "conflict":
		rejected = fmt.Errorf("commit %s: %w: history has %d events, commit expects %d",
			runID, backend.ErrConflict, r.int(3), c.Expect)
	case "corrupt":
		rejected = fmt.Errorf("commit %s: %w: record says %d events, history list holds %d",
			runID, backend.ErrCorruptHistory, r.int(3), r.int(4))
	default:
		rejected = fmt.Errorf("commit %s: unexpected script reply %q", runID, code)
	}
	if rejected != nil && wake > 0 {
		// The deadline written before the script stands for a write that
		// did not happen. Put back the run's own wake time if the deadline
		// is its (same token), else remove it.
		var recWake int64
		var recToken string
		if code != "notfound" && len(r.items) >= 3 {
			recWake, recToken = r.int(1), r.str(2)
		}
		after = append(after, func(p goredis.Pipeliner) {
			if recToken == token && recWake > 0 {
				p.ZAdd(ctx, part.keys.deadlines, goredis.Z{Score: float64(recWake), Member: wakeMember})
			} else {
				p.ZRem(ctx, part.keys.deadlines, wakeMember)
			}
		})
	}
	if r.err != nil {
		return fmt.Errorf("commit %s: %w", runID, r.err)
	}
	if len(after) > 0 {
		_, err := s.pipe(ctx, func(p goredis.Pipeliner) {
			for _, f := range after {
				f(p)
			}
		})
		if err != nil && rejected == nil {
			// The commit is written; what failed is a hint that a lease
			// expiry or a visibility timeout makes up for.
			s.log.Warn("commit: queue or clean up", "run_id", runID, "err", err)
		}
	}
	if rejected != nil {
		return rejected
	}
	if wake > 0 {
		s.arm(part, c.Run.WakeAt)
	}
	return nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
