package inmem

import (
	"container/heap"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Poll implements backend.Store. A run has at most one task waiting to be
// polled: a run queued again before it is polled gives one task. A run
// queued while a task for it is out gets a second task.
func (s *Store) Poll(ctx context.Context, worker string) (backend.Task, error) {
	var task backend.Task
	err := s.await(ctx, func() bool {
		s.tick()
		var ok bool
		task, ok = s.deliver()
		return ok
	})
	if err != nil {
		return backend.Task{}, fmt.Errorf("poll: %w", err)
	}
	return task, nil
}

// Ack implements backend.Store.
func (s *Store) Ack(ctx context.Context, task backend.Task) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[task.ID] == task.RunID {
		delete(s.inflight, task.ID)
	}
	return nil
}

// enqueue queues a task for r unless one waits already. s.mu must be held.
func (s *Store) enqueue(r *run) {
	if r.queued {
		return
	}
	r.queued = true
	s.queue = append(s.queue, r)
	s.notify()
}

// deliver takes the oldest queued task, if any, and arranges for it to be
// delivered again unless it is acknowledged in time. s.mu must be held.
func (s *Store) deliver() (backend.Task, bool) {
	if len(s.queue) == 0 {
		return backend.Task{}, false
	}
	r := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	r.queued = false
	s.lastTask++
	task := backend.Task{RunID: r.info.ID, ID: strconv.FormatInt(s.lastTask, 10)}
	s.inflight[task.ID] = task.RunID
	s.addDeadline(deadline{at: s.clock.Now().Add(s.visibility), kind: taskDue, run: task.RunID, task: task.ID})
	return task, true
}

// deadline is a time at which a run may have to be queued. Deadlines are
// not removed when they stop applying (a lease is extended, a task
// acknowledged, a wake time replaced); fire checks that they still do.
type deadline struct {
	at    time.Time
	kind  deadlineKind
	run   string
	task  string // taskDue: the task to deliver again
	token int64  // leaseDue: the lease's token
}

type deadlineKind int

const (
	wakeDue     deadlineKind = iota // the run's wake time
	taskDue                         // a task's visibility timeout
	leaseDue                        // a lease's expiry
	activityDue                     // an activity attempt's visibility timeout
)

// deadlines is a min-heap of deadlines by time.
type deadlines []deadline

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlines) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlines) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlines) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = deadline{}
	*h = old[:len(old)-1]
	return d
}

// timer is the single call scheduled on the clock, for the earliest
// deadline.
type timer struct {
	stop func() bool // nil if no call is scheduled
	at   time.Time
	gen  uint64 // tells the scheduled call from ones stopped too late
}

// addDeadline records d and fires it at once if its time has come. s.mu
// must be held.
func (s *Store) addDeadline(d deadline) {
	heap.Push(&s.deadlines, d)
	s.tick()
}

// tick fires the deadlines whose time has come and schedules a call on
// the clock for the next one. s.mu must be held.
func (s *Store) tick() {
	now := s.clock.Now()
	for len(s.deadlines) > 0 && !s.deadlines[0].at.After(now) {
		s.fire(heap.Pop(&s.deadlines).(deadline))
	}
	if len(s.deadlines) == 0 {
		return
	}
	next := s.deadlines[0].at
	if s.timer.stop != nil {
		if !next.Before(s.timer.at) {
			return
		}
		s.timer.stop()
	}
	s.timer.gen++
	gen := s.timer.gen
	s.timer.at = next
	s.timer.stop = s.clock.AfterFunc(next.Sub(now), func() { s.onTimer(gen) })
}

// onTimer is called by the clock at the time of a deadline.
func (s *Store) onTimer(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen == s.timer.gen {
		s.timer.stop = nil
	}
	s.tick()
}

// fire queues the run of d if d still applies. s.mu must be held.
func (s *Store) fire(d deadline) {
	r := s.runs[d.run]
	switch d.kind {
	case wakeDue:
		if r.wakeAt.Equal(d.at) {
			r.wakeAt = time.Time{}
			s.enqueue(r)
		}
	case taskDue:
		if _, out := s.inflight[d.task]; out {
			delete(s.inflight, d.task)
			s.enqueue(r)
		}
	case leaseDue:
		if r.held && r.lease.Token == d.token && r.lease.Expires.Equal(d.at) {
			s.enqueue(r)
		}
	case activityDue:
		if t, out := s.actOut[d.task]; out {
			delete(s.actOut, d.task)
			s.activities[t.Queue] = append(s.activities[t.Queue], t.Attempt)
			s.notify()
		}
	}
}
