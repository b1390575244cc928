package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Activity task queues (backend.ActivityQueue). Each queue is a stream of
// attempts, read through the consumer group "workers", and a set of the
// deadlines of the attempts delivered from it, both with the queue's hash
// tag (see keys.go). As in the run task queue, an attempt that is not
// acknowledged by its deadline, on the store's clock, goes back to the end
// of its queue and is delivered again. Deadlines fire in the
// activity_take script, which every PollActivity and every reader runs,
// and in a call that the store schedules on its clock for the earliest
// deadline it knows of in each queue it has polled.

// activityQueues are the activity task queues a store has polled, and the
// PollActivity calls waiting on them.
type activityQueues struct {
	// consumer names the store's readers in the queues' consumer group.
	consumer string

	mu      sync.Mutex
	byName  map[string]*activityQueue
	waiters []*activityWaiter // oldest first
}

// activityQueue is one activity task queue as a store sees it: its keys,
// its alarm, and the state of its reader.
type activityQueue struct {
	name  string
	keys  queueKeys
	alarm alarm
	stamp stampLock // orders the store's takes on the queue

	// Guarded by activityQueues.mu.
	demand  demand                // the waiters that want this queue
	reading bool                  // the reader was started
	held    *backend.ActivityTask // read by the reader, wanted by no waiter yet
	taken   chan struct{}         // closed when held is taken
}

// activityWaiter is a blocked PollActivity.
type activityWaiter struct {
	queues []*activityQueue
	// got receives one attempt, from a reader that removed the waiter
	// first: a send never blocks.
	got chan backend.ActivityTask
}

func newActivityQueues() *activityQueues {
	return &activityQueues{consumer: "reader-" + randomID()[:16], byName: make(map[string]*activityQueue)}
}

// activityQueues returns the queues with the given names, without
// repeats, in the order given.
func (s *Store) activityQueues(names []string) ([]*activityQueue, error) {
	if len(names) == 0 {
		return nil, errors.New("no queues")
	}
	a := s.acts
	a.mu.Lock()
	defer a.mu.Unlock()
	qs := make([]*activityQueue, 0, len(names))
	for _, name := range names {
		if name == "" {
			return nil, errors.New("empty queue name")
		}
		q := a.byName[name]
		if q == nil {
			q = &activityQueue{name: name, keys: s.queueKeys(name), demand: newDemand(), stamp: newStampLock()}
			q.alarm.ring = func() { s.fireActivities(q) }
			a.byName[name] = q
		}
		if !slices.Contains(qs, q) {
			qs = append(qs, q)
		}
	}
	return qs, nil
}

// PushActivity implements backend.ActivityQueue in one round trip: an
// XADD to the queue's stream. A push that go-redis sends again after a
// lost reply may queue the attempt twice; queued attempts are run at
// least once in any case.
func (s *Store) PushActivity(ctx context.Context, queue string, attempt []byte) error {
	if queue == "" {
		return errors.New("push activity: empty queue name")
	}
	err := s.client.XAdd(ctx, &goredis.XAddArgs{Stream: s.queueKeys(queue).attempts, Values: []any{"a", attempt}}).Err()
	if err != nil {
		return fmt.Errorf("push activity to %s: %w", queue, err)
	}
	return nil
}

// PollActivity implements backend.ActivityQueue. An attempt is delivered
// when it is read; one not acknowledged within the visibility timeout goes
// back to the end of its queue and is delivered again.
//
// Of several queues it returns the attempt that Redis added first (to
// the millisecond; one delivered again counts as added then), looking at
// all of them in one round trip and taking from the oldest in another. Of
// one queue, it takes in one round trip. If nothing is ready and ctx is
// not done, it waits: the first PollActivity that waits on a queue starts
// the store's reader of that queue, which blocks in XREADGROUP while a
// PollActivity waits for it, and hands over what it reads. A reader holds
// at most one attempt that no PollActivity has taken yet, for at most a
// second, then hands it back to the end of its queue.
func (s *Store) PollActivity(ctx context.Context, worker string, queues []string) (backend.ActivityTask, error) {
	if s.closed() {
		return backend.ActivityTask{}, errors.New("poll activity: store closed")
	}
	if worker == "" {
		return backend.ActivityTask{}, errors.New("poll activity: empty worker name")
	}
	qs, err := s.activityQueues(queues)
	if err != nil {
		return backend.ActivityTask{}, fmt.Errorf("poll activity: %w", err)
	}
	task, ok, err := s.pollActivityNow(ctx, worker, qs)
	switch {
	case err != nil:
		return backend.ActivityTask{}, fmt.Errorf("poll activity: %w", err)
	case ok:
		return task, nil
	case ctx.Err() != nil:
		return backend.ActivityTask{}, fmt.Errorf("poll activity: %w", ctx.Err())
	}
	return s.awaitActivity(ctx, qs)
}

// pollActivityNow takes the oldest ready attempt of qs, if there is one,
// without blocking: an attempt a reader holds, or one read for worker.
func (s *Store) pollActivityNow(ctx context.Context, worker string, qs []*activityQueue) (backend.ActivityTask, bool, error) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	order, oldest := qs, ""
	if len(qs) > 1 {
		heads, err := s.peekActivities(bg, qs)
		if err != nil {
			return backend.ActivityTask{}, false, err
		}
		type head struct {
			q  *activityQueue
			id string
		}
		var ready []head
		for i, q := range qs {
			if heads[i] != "" {
				ready = append(ready, head{q, heads[i]})
			}
		}
		slices.SortStableFunc(ready, func(a, b head) int { return compareEntries(a.id, b.id) })
		order = make([]*activityQueue, len(ready))
		for i, h := range ready {
			order[i] = h.q
		}
		if len(ready) > 0 {
			oldest = ready[0].id
		}
	}
	if task, ok := s.acts.takeHeld(qs, oldest); ok {
		return task, true, nil
	}
	for _, q := range order {
		tasks, _, err := s.takeActivities(bg, q, worker, 1, nil)
		if err != nil || len(tasks) > 0 {
			return firstActivity(tasks), len(tasks) > 0, err
		}
	}
	return backend.ActivityTask{}, false, nil
}

// awaitActivity waits for a reader of one of qs to hand over an attempt.
func (s *Store) awaitActivity(ctx context.Context, qs []*activityQueue) (backend.ActivityTask, error) {
	a := s.acts
	w := &activityWaiter{queues: qs, got: make(chan backend.ActivityTask, 1)}
	a.mu.Lock()
	// A reader may have read one since pollActivityNow looked.
	if task, ok := a.takeHeldLocked(qs, ""); ok {
		a.mu.Unlock()
		return task, nil
	}
	a.waiters = append(a.waiters, w)
	var start []*activityQueue
	for _, q := range qs {
		q.want(1)
		if !q.reading {
			q.reading = true
			start = append(start, q)
		}
	}
	a.mu.Unlock()
	for _, q := range start {
		s.startReader(q)
	}

	var err error
	select {
	case task := <-w.got:
		return task, nil
	case <-ctx.Done():
		err = fmt.Errorf("poll activity: %w", ctx.Err())
	case <-s.done:
		err = errors.New("poll activity: store closed")
	}
	a.mu.Lock()
	waited := a.remove(w)
	if waited {
		// Polling stopped: what the readers of queues nobody waits for
		// any more hold, or read now, goes back at once.
		for _, q := range qs {
			q.demand.stop()
		}
	}
	a.mu.Unlock()
	if waited {
		return backend.ActivityTask{}, err
	}
	// A reader handed one over as ctx ended: it is ready, so return it.
	task := <-w.got
	if s.closed() {
		s.giveBackActivity(task)
		return backend.ActivityTask{}, err
	}
	return task, nil
}

// AckActivity implements backend.ActivityQueue in one round trip: it
// acknowledges and deletes the attempt's entry and its deadline. An
// attempt whose visibility timeout passed before it was acknowledged is
// in its queue again, and is delivered again all the same. A task without
// an id (one the caller made up, not polled) needs no acknowledgement.
func (s *Store) AckActivity(ctx context.Context, task backend.ActivityTask) error {
	if task.ID == "" {
		return nil
	}
	if task.Queue == "" || !streamID.MatchString(task.ID) {
		return fmt.Errorf("ack activity: malformed task: queue %q, id %q", task.Queue, task.ID)
	}
	if _, err := s.run(ctx, s.scripts.actAck, s.queueKeys(task.Queue).list(), group, task.ID, "0"); err != nil {
		return fmt.Errorf("ack activity %s of %s: %w", task.ID, task.Queue, err)
	}
	return nil
}

// giveBackActivity hands an attempt that was read but never returned by
// PollActivity back to the end of its queue at once.
func (s *Store) giveBackActivity(task backend.ActivityTask) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := s.run(ctx, s.scripts.actAck, s.queueKeys(task.Queue).list(), group, task.ID, "1")
	if err != nil && !s.closed() {
		// Its visibility timeout delivers it again.
		s.log.Warn("hand back activity", "queue", task.Queue, "err", err)
	}
}

// takeActivities runs activity_take on a queue: it fires the queue's due
// deadlines, records the delivery of the entries in read, and reads up to
// count more attempts for consumer. It sets the queue's alarm for the next
// deadline, and returns the attempts delivered and, when consumer is "",
// the id of the next entry to be read ("" if none). It reads the clock
// holding the queue's stampLock, and holds it until the script replies.
func (s *Store) takeActivities(ctx context.Context, q *activityQueue, consumer string, count int, read []goredis.XMessage) ([]backend.ActivityTask, string, error) {
	if err := q.stamp.lock(ctx); err != nil {
		return nil, "", fmt.Errorf("take from queue %s: %w", q.name, err)
	}
	v, err := s.run(ctx, s.scripts.actTake, q.keys.list(), s.takeActivityArgs(consumer, count, read)...)
	q.stamp.unlock()
	if err != nil {
		return nil, "", fmt.Errorf("take from queue %s: %w", q.name, err)
	}
	return s.takenActivities(q, v, read)
}

func (s *Store) takeActivityArgs(consumer string, count int, read []goredis.XMessage) []any {
	args := []any{group, consumer, count, millis(s.clock.Now()), s.visibility.Milliseconds(), sweepLimit}
	for _, msg := range read {
		attempt := ""
		if _, ok := msg.Values["a"].(string); ok {
			attempt = "1"
		}
		args = append(args, msg.ID, attempt)
	}
	return args
}

// takenActivities reads activity_take's reply v, for the entries in read.
func (s *Store) takenActivities(q *activityQueue, v any, read []goredis.XMessage) ([]backend.ActivityTask, string, error) {
	r := newReply(v)
	got, next, following := r.list(0), r.str(1), r.str(2)
	var tasks []backend.ActivityTask
	for _, msg := range read {
		if attempt, ok := msg.Values["a"].(string); ok {
			tasks = append(tasks, backend.ActivityTask{Queue: q.name, ID: msg.ID, Attempt: []byte(attempt)})
		}
	}
	for i := 0; i+1 < len(got.items); i += 2 {
		tasks = append(tasks, backend.ActivityTask{Queue: q.name, ID: got.str(i), Attempt: []byte(got.str(i + 1))})
	}
	if err := firstErr(r.err, got.err); err != nil {
		return nil, "", fmt.Errorf("take from queue %s: %w", q.name, err)
	}
	if next != "" {
		if score, err := strconv.ParseFloat(next, 64); err == nil && !math.IsNaN(score) {
			s.setAlarm(&q.alarm, time.UnixMilli(int64(score)))
		}
	}
	return tasks, following, nil
}

// peekActivities fires the due deadlines of each queue and returns the id
// of the entry each would deliver next ("" if none), in one round trip.
// It holds the stampLocks of the queues, taken in the order of their
// names, from before it reads the clock until Redis replies.
func (s *Store) peekActivities(ctx context.Context, qs []*activityQueue) ([]string, error) {
	locked := slices.SortedFunc(slices.Values(qs), func(a, b *activityQueue) int { return strings.Compare(a.name, b.name) })
	for i, q := range locked {
		if err := q.stamp.lock(ctx); err != nil {
			for _, q := range locked[:i] {
				q.stamp.unlock()
			}
			return nil, fmt.Errorf("look at queues: %w", err)
		}
	}
	res := make([]*goredis.Cmd, len(qs))
	_, err := s.pipe(ctx, func(p goredis.Pipeliner) {
		for i, q := range qs {
			res[i] = s.scripts.actTake.EvalSha(ctx, p, q.keys.list(), s.takeActivityArgs("", 0, nil)...)
		}
	})
	for _, q := range locked {
		q.stamp.unlock()
	}
	heads := make([]string, len(qs))
	failed := 0
	for i, q := range qs {
		if err := res[i].Err(); err != nil {
			// The queue's Cluster node may be down: the others serve.
			s.log.Warn("look at queue", "queue", q.name, "err", err)
			failed++
			continue
		}
		_, head, err := s.takenActivities(q, res[i].Val(), nil)
		if err != nil {
			return nil, err
		}
		heads[i] = head
	}
	if failed > 0 && failed == len(qs) {
		return nil, fmt.Errorf("look at queues: %w", err)
	}
	return heads, nil
}

// fireActivities runs when the queue's alarm rings: it fires the due
// deadlines, and activity_take sets the alarm for the next.
func (s *Store) fireActivities(q *activityQueue) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, _, err := s.takeActivities(ctx, q, "", 0, nil); err != nil && !s.closed() {
		s.log.Warn("fire activity deadlines", "queue", q.name, "err", err)
		s.setAlarm(&q.alarm, s.clock.Now().Add(retryAfter))
	}
}

// sweepActivities runs the janitor on every queue the store has polled.
func (s *Store) sweepActivities(minIdle time.Duration) {
	a := s.acts
	a.mu.Lock()
	qs := make([]*activityQueue, 0, len(a.byName))
	for _, q := range a.byName {
		qs = append(qs, q)
	}
	a.mu.Unlock()
	for _, q := range qs {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_, err := s.run(ctx, s.scripts.actJanitor, q.keys.list(), group, "janitor",
			minIdle.Milliseconds(), janitorCount, forgetConsumersAfter.Milliseconds())
		cancel()
		if err != nil && !s.closed() {
			s.logJanitorError(err, "queue", q.name)
		}
	}
}

// compareEntries orders stream entry ids: by time, then by sequence
// number. Malformed ids sort first.
func compareEntries(a, b string) int {
	am, as := splitEntry(a)
	bm, bs := splitEntry(b)
	return cmp.Or(cmp.Compare(am, bm), cmp.Compare(as, bs))
}

func splitEntry(id string) (ms, seq uint64) {
	m, sq, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(sq, 10, 64)
	return ms, seq
}

func firstActivity(tasks []backend.ActivityTask) backend.ActivityTask {
	if len(tasks) == 0 {
		return backend.ActivityTask{}
	}
	return tasks[0]
}
