package redis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Deadlines are the times at which a partition's runs may need a worker:
// wake times, lease expiries, visibility timeouts of delivered tasks and
// CreateRun's safety net. They live in the partition's deadlines set and
// fire in the take script, which every Poll and every reader runs; between
// those, each store keeps one call scheduled on its clock for the earliest
// deadline it knows of in each partition, so a deadline fires on time,
// with the system clock and with a fake one alike. The call runs the take
// script with nothing to read, which moves due deadlines into the task
// stream, where blocked readers (of any process) see them.

const (
	// sweepLimit caps the deadlines one take fires; more wait for the next.
	sweepLimit = 100
	// opTimeout bounds a background call to Redis.
	opTimeout = 5 * time.Second
	// retryAfter is when a background sweep that failed is tried again.
	retryAfter = time.Second
	// janitorCount caps the entries one janitor pass claims per partition.
	janitorCount = 100
	// forgetConsumersAfter is how long, in real time, a consumer of a task
	// stream may be idle, with nothing pending, before the janitor deletes
	// it. Worker ids change with every process; consumers do not go away
	// by themselves.
	forgetConsumersAfter = 24 * time.Hour
)

// partition is one task stream and deadline set, this store's alarm for
// its earliest deadline, and the lock that orders this store's takes on it.
type partition struct {
	n     int
	keys  partKeys
	alarm alarm
	stamp stampLock
}

func (s *Store) newPartition(n int) *partition {
	p := &partition{n: n, keys: s.partKeys(n), stamp: newStampLock()}
	p.alarm.ring = func() { s.fire(p) }
	return p
}

func (s *Store) partFor(runID string) *partition { return s.parts[s.partitionOf(runID)] }

// arm makes sure the partition's alarm rings no later than at.
func (s *Store) arm(p *partition, at time.Time) { s.setAlarm(&p.alarm, at) }

// disarm stops the alarms of the partitions and of the activity queues.
func (s *Store) disarm() {
	for _, p := range s.parts {
		p.alarm.off()
	}
	s.acts.disarm()
}

// fire runs when the partition's alarm rings: it fires the due deadlines,
// and take sets the alarm for the next.
func (s *Store) fire(p *partition) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := s.take(ctx, p, "", 0, nil); err != nil {
		if !s.closed() {
			s.log.Warn("fire deadlines", "partition", p.n, "err", err)
			s.arm(p, s.clock.Now().Add(retryAfter))
		}
	}
}

// claim is a wake or lease deadline that take found due and pushed back
// until the store has read the run's record (see take.lua).
type claim struct {
	member, score string
	kind          byte
	runID, extra  string
}

// take runs the take script on a partition: it fires due deadlines,
// records the delivery of the entries in read, and reads up to count more
// tasks for consumer. It schedules the partition's timer for the next
// deadline, settles the lease deadlines it claimed, and returns the tasks.
// It reads the clock holding the partition's stampLock, and holds it until
// the script replies.
func (s *Store) take(ctx context.Context, p *partition, consumer string, count int, read []goredis.XMessage) ([]backend.Task, error) {
	if err := p.stamp.lock(ctx); err != nil {
		return nil, fmt.Errorf("take from partition %d: %w", p.n, err)
	}
	now := s.clock.Now()
	args := []any{group, consumer, count, millis(now), s.visibility.Milliseconds(), sweepLimit}
	for _, msg := range read {
		run, _ := msg.Values["r"].(string)
		args = append(args, msg.ID, run)
	}
	v, err := s.run(ctx, s.scripts.take, p.keys.list(), args...)
	p.stamp.unlock()
	if err != nil {
		return nil, fmt.Errorf("take from partition %d: %w", p.n, err)
	}
	r := newReply(v)
	got, claimed, next := r.list(0), r.list(1), r.str(2)
	if r.err != nil || got.err != nil || claimed.err != nil {
		return nil, fmt.Errorf("take from partition %d: %w", p.n, firstErr(r.err, got.err, claimed.err))
	}
	var tasks []backend.Task
	for i := 0; i+1 < len(got.items); i += 2 {
		tasks = append(tasks, backend.Task{RunID: got.str(i + 1), ID: taskID(p.n, got.str(i))})
	}
	var claims []claim
	for i := 0; i+1 < len(claimed.items); i += 2 {
		m := claimed.str(i)
		if kind, runID, extra, ok := parseMember(m); ok && (kind == kindLease || kind == kindWake) {
			claims = append(claims, claim{member: m, score: claimed.str(i + 1), kind: kind, runID: runID, extra: extra})
		}
	}
	if err := firstErr(got.err, claimed.err); err != nil {
		return nil, fmt.Errorf("take from partition %d: %w", p.n, err)
	}
	if next != "" {
		if score, err := strconv.ParseFloat(next, 64); err == nil && !math.IsNaN(score) {
			s.arm(p, time.UnixMilli(int64(score)))
		}
	}
	if len(claims) > 0 {
		queued, err := s.settle(ctx, p, claims)
		if err != nil {
			// The claimed deadlines come due again after a visibility timeout.
			s.log.Warn("settle deadlines", "partition", p.n, "err", err)
		}
		if queued > 0 && consumer != "" && len(tasks) < count {
			// Runs that settle queued are ready now: read them too.
			more, err := s.take(ctx, p, consumer, count-len(tasks), nil)
			if err != nil {
				return tasks, err
			}
			tasks = append(tasks, more...)
		}
	}
	return tasks, nil
}

// settle decides what the claimed deadlines call for, from the records
// of their runs, and applies it.
//
// A wake deadline queues its run if the record's wake time has come and
// was set by the deadline's lease (token); a later wake time moves it;
// anything else (the wake time was cleared, or replaced by a later
// holder, whose deadline stands for it) drops it.
//
// A lease deadline queues its run if the deadline's worker still holds a
// lease that has expired, or if nobody holds it and its inbox is not
// empty (the lease was released while messages arrived, and whoever had
// to queue it did not) and the run is not dormant (messages to a parked
// run wait for it to be retried: queuing it would lease and release it
// again, and again at each expiry); an extended lease moves it; anything
// else drops it.
func (s *Store) settle(ctx context.Context, p *partition, claims []claim) (int64, error) {
	fields := make([]*goredis.SliceCmd, len(claims))
	inboxes := make([]*goredis.IntCmd, len(claims))
	_, err := s.client.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
		for i, c := range claims {
			rk := s.runKeys(c.runID)
			fields[i] = pipe.HMGet(ctx, rk.run, "held", "lw", "lexp", "wake", "wt", "st")
			inboxes[i] = pipe.XLen(ctx, rk.inbox)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read records: %w", err)
	}
	now := millis(s.clock.Now())
	args := make([]any, 0, 3*len(claims))
	for i, c := range claims {
		args = append(args, c.member, c.score, verdict(c, fields[i].Val(), inboxes[i].Val(), now))
	}
	v, err := s.run(ctx, s.scripts.settle, p.keys.list(), args...)
	if err != nil {
		return 0, fmt.Errorf("settle: %w", err)
	}
	queued, _ := v.(int64)
	return queued, nil
}

// verdict is settle's decision on one claim: "queue", "drop", or the time
// (ms) to move the deadline to. f holds the record's held, lw, lexp, wake,
// wt and st fields, nil where missing.
func verdict(c claim, f []any, inbox int64, now int64) string {
	str := func(i int) string {
		if i < len(f) {
			v, _ := f[i].(string)
			return v
		}
		return ""
	}
	held, worker, wakeToken := str(0), str(1), str(4)
	at, err := strconv.ParseInt(str(2), 10, 64)
	if c.kind == kindWake {
		at, err = strconv.ParseInt(str(3), 10, 64)
	}
	switch {
	case err != nil: // no record
		return "drop"
	case c.kind == kindWake && (wakeToken != c.extra || at == 0):
		return "drop"
	case c.kind == kindLease && held == "1" && worker != c.extra:
		return "drop"
	case c.kind == kindLease && held != "1":
		if inbox > 0 && !backend.Status(str(5)).Dormant() {
			return "queue"
		}
		return "drop"
	case at > now:
		return strconv.FormatInt(at, 10)
	}
	return "queue"
}

// startJanitor starts the janitor and the reconciler, once. s.mu must be
// held and the store must not be closed.
func (s *Store) startJanitor() {
	if !s.janitor {
		s.janitor = true
		s.wg.Add(1)
		go s.runJanitor()
		if s.reconcileEvery > 0 {
			s.wg.Add(1)
			go s.runReconciler()
		}
	}
}

// runJanitor claims, on every partition and every activity queue this
// store has polled, and at every interval of real time, the entries that
// stayed pending for a few visibility timeouts without an in-flight
// deadline: their reader died between reading and recording them.
// Deadlines do the rest.
func (s *Store) runJanitor() {
	defer s.wg.Done()
	every := max(s.visibility, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		for _, p := range s.parts {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			_, err := s.run(ctx, s.scripts.janitor, p.keys.list(), group, "janitor",
				(3 * every).Milliseconds(), janitorCount, forgetConsumersAfter.Milliseconds())
			cancel()
			if err != nil && !s.closed() {
				s.logJanitorError(err, "partition", p.n)
			}
		}
		s.sweepActivities(3 * every)
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
