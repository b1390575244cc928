package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

// The readers of activity queues, and how they hand attempts over. A
// store starts one reader per queue, the first time a PollActivity waits
// for that queue. While any PollActivity waits for its queue, a reader
// takes attempts (a non-blocking take, then a blocking XREADGROUP) and
// hands each to the oldest waiter that wants its queue. One that no
// waiter wants any more is held, for a PollActivity to take, for up to
// holdFor, and then handed back to the end of its queue; at once if the
// last PollActivity for the queue ended with its context (its workers
// stopped), so that other workers get the attempt without delay.

// startReader starts the reader of q, unless the store is closed.
func (s *Store) startReader(q *activityQueue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed() {
		return
	}
	s.startJanitor()
	s.wg.Add(1)
	go s.readActivities(q)
}

// readActivities is the reader of a queue: while a PollActivity waits for
// the queue, it takes attempts from it (a non-blocking take, then a
// blocking XREADGROUP) and offers them.
func (s *Store) readActivities(q *activityQueue) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const backoffMin = 10 * time.Millisecond
	backoff := backoffMin
	for {
		select {
		case <-s.acts.wantedNow(q):
		case <-s.done:
			return
		}
		task, ok, err := s.nextActivity(ctx, q)
		if s.closed() {
			if ok {
				s.giveBackActivity(task)
			}
			return
		}
		if err != nil {
			// Log the first error of a streak only.
			if backoff == backoffMin {
				s.log.Warn("read activities: retrying", "queue", q.name, "err", err)
			}
			select {
			case <-time.After(backoff):
			case <-s.done:
				return
			}
			backoff = min(2*backoff, backoffMax)
			continue
		}
		if backoff != backoffMin {
			s.log.Info("read activities: recovered", "queue", q.name)
			backoff = backoffMin
		}
		if ok {
			s.offerActivity(q, task)
		}
	}
}

// nextActivity takes the queue's next attempt: a non-blocking take first,
// then a read that blocks up to blockFor.
func (s *Store) nextActivity(ctx context.Context, q *activityQueue) (backend.ActivityTask, bool, error) {
	consumer := s.acts.consumer
	tasks, _, err := s.takeActivities(ctx, q, consumer, 1, nil)
	if err != nil || len(tasks) > 0 {
		return firstActivity(tasks), len(tasks) > 0, err
	}
	streams, err := s.client.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: group, Consumer: consumer, Streams: []string{q.keys.attempts, ">"}, Count: 1, Block: blockFor,
	}).Result()
	switch {
	case errors.Is(err, goredis.Nil):
		return backend.ActivityTask{}, false, nil
	case err != nil:
		return backend.ActivityTask{}, false, fmt.Errorf("read queue %s: %w", q.name, err)
	case len(streams) == 0 || len(streams[0].Messages) == 0:
		return backend.ActivityTask{}, false, nil
	}
	// Record the deliveries. Until this is done, only the janitor would
	// see the entries again if this process died.
	tasks, _, err = s.takeActivities(context.WithoutCancel(ctx), q, "", 0, streams[0].Messages)
	return firstActivity(tasks), len(tasks) > 0, err
}

// offerActivity hands an attempt to the oldest waiter that wants its
// queue, or holds it until a PollActivity takes it, for up to holdFor,
// and then hands it back to the queue.
func (s *Store) offerActivity(q *activityQueue, task backend.ActivityTask) {
	a := s.acts
	a.mu.Lock()
	for _, w := range a.waiters {
		if slices.Contains(w.queues, q) {
			a.remove(w)
			w.got <- task
			a.mu.Unlock()
			return
		}
	}
	q.held = &task
	taken := make(chan struct{})
	q.taken = taken
	gone := q.demand.gone
	a.mu.Unlock()

	t := time.NewTimer(holdFor)
	defer t.Stop()
	select {
	case <-taken:
		return
	case <-t.C:
	case <-gone:
	case <-s.done:
	}
	// Whoever clears held owns the attempt: here, or Close.
	a.mu.Lock()
	mine := q.held != nil && q.held.ID == task.ID
	if mine {
		q.held = nil
	}
	a.mu.Unlock()
	if mine {
		s.giveBackActivity(task)
	}
}

// takeHeld takes the oldest attempt that the readers of qs hold, if it
// is older than before ("" for any).
func (a *activityQueues) takeHeld(qs []*activityQueue, before string) (backend.ActivityTask, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.takeHeldLocked(qs, before)
}

func (a *activityQueues) takeHeldLocked(qs []*activityQueue, before string) (backend.ActivityTask, bool) {
	var oldest *activityQueue
	for _, q := range qs {
		if q.held != nil && (oldest == nil || compareEntries(q.held.ID, oldest.held.ID) < 0) {
			oldest = q
		}
	}
	if oldest == nil || (before != "" && compareEntries(oldest.held.ID, before) >= 0) {
		return backend.ActivityTask{}, false
	}
	task := *oldest.held
	oldest.held = nil
	close(oldest.taken)
	return task, true
}

// remove removes a waiter, and reports whether it was waiting. a.mu must
// be held.
func (a *activityQueues) remove(w *activityWaiter) bool {
	i := slices.Index(a.waiters, w)
	if i < 0 {
		return false
	}
	a.waiters = slices.Delete(a.waiters, i, i+1)
	for _, q := range w.queues {
		q.want(-1)
	}
	return true
}

// want adds n to the number of waiters that want q. The activityQueues'
// mu must be held.
func (q *activityQueue) want(n int) { q.demand.add(n) }

// wantedNow returns a channel that is closed while a waiter wants q.
func (a *activityQueues) wantedNow(q *activityQueue) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return q.demand.wanted
}

// disarm stops the alarms of the queues.
func (a *activityQueues) disarm() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, q := range a.byName {
		q.alarm.off()
	}
}

// handBackActivities hands the attempts that readers hold back to their
// queues (Close).
func (s *Store) handBackActivities() {
	a := s.acts
	var tasks []backend.ActivityTask
	a.mu.Lock()
	for _, q := range a.byName {
		if q.held != nil {
			tasks = append(tasks, *q.held)
			q.held = nil
			close(q.taken)
		}
	}
	a.mu.Unlock()
	for _, t := range tasks {
		s.giveBackActivity(t)
	}
}
