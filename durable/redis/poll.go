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

const (
	// blockFor bounds a reader's blocking XREADGROUP: the longest a reader
	// goes without sweeping its partition's deadlines, and the longest a
	// reader blocked in Redis keeps running after Close.
	blockFor = time.Second
	// holdFor is how long a reader keeps a task it read while no Poll
	// wants one before it hands the task back to the queue.
	holdFor = time.Second
	// backoffMax caps the pause of a reader after Redis errors.
	backoffMax = time.Second
)

// Poll implements backend.Store. It never polls Redis in a loop: the first
// blocking Poll for a worker starts one reader per partition, which blocks
// in XREADGROUP while a Poll for that worker waits, and hands over what it
// reads. A Poll with a done context checks the partitions once, each in
// one round trip, and returns a task if one is ready.
//
// A task is delivered when a reader or a Poll reads it, and delivered again
// if it is not acknowledged within the visibility timeout. A reader holds
// at most one task that no Poll has taken yet, for at most a second, and
// then hands it back to the queue; at once if the worker's last Poll ended
// with its context (the worker stopped), so that another worker's readers
// get the task without delay.
func (s *Store) Poll(ctx context.Context, worker string) (backend.Task, error) {
	if s.closed() {
		return backend.Task{}, errors.New("poll: store closed")
	}
	if worker == "" {
		return backend.Task{}, errors.New("poll: empty worker name")
	}
	// A done ctx asks for a task that is ready: the check must not fail
	// for it.
	check, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	err := s.checkLayout(check)
	cancel()
	if err != nil {
		return backend.Task{}, fmt.Errorf("poll: %w", err)
	}
	p := s.poller(worker)
	select {
	case t := <-p.handoff:
		return t, nil
	default:
	}
	if ctx.Err() != nil {
		return s.pollNow(ctx, worker)
	}
	p.start()
	p.want(1)
	select {
	case t := <-p.handoff:
		p.want(-1)
		return t, nil
	case <-ctx.Done():
		p.giveUp()
		return backend.Task{}, fmt.Errorf("poll: %w", ctx.Err())
	case <-s.done:
		p.want(-1)
		return backend.Task{}, errors.New("poll: store closed")
	}
}

// pollNow checks every partition once, without blocking, starting from a
// different one each time. A partition that cannot be read (its Cluster
// node is down) is skipped; the error is returned only if none could be.
func (s *Store) pollNow(ctx context.Context, worker string) (backend.Task, error) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	start := int(s.rotor.Add(1))
	var errs []error
	for i := range s.parts {
		p := s.parts[(start+i)%len(s.parts)]
		tasks, err := s.take(bg, p, worker, 1, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(tasks) > 0 {
			return tasks[0], nil
		}
	}
	if len(errs) == len(s.parts) {
		return backend.Task{}, fmt.Errorf("poll: %w", errors.Join(errs...))
	}
	return backend.Task{}, fmt.Errorf("poll: %w", ctx.Err())
}

// Ack implements backend.Store: it acknowledges and deletes the task's
// entry and its in-flight deadline, in one round trip. A task without an
// id (one the caller made up, not polled) needs no acknowledgement.
func (s *Store) Ack(ctx context.Context, task backend.Task) error {
	if task.ID == "" {
		return nil
	}
	p, entry, err := s.parseTaskID(task.ID)
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	_, err = s.batch(ctx, func(pipe goredis.Pipeliner) {
		s.scripts.ack.EvalSha(ctx, pipe, p.keys.list(), group, entry, deadlineMember(kindTask, task.RunID, entry), "")
	})
	if err != nil {
		return fmt.Errorf("ack task %s of %s: %w", task.ID, task.RunID, err)
	}
	return nil
}

// giveBack hands a task that was read but never returned by Poll back to
// the queue at once.
func (s *Store) giveBack(task backend.Task) {
	p, entry, err := s.parseTaskID(task.ID)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err = s.run(ctx, s.scripts.ack, p.keys.list(), group, entry, deadlineMember(kindTask, task.RunID, entry), task.RunID)
	if err != nil && !s.closed() {
		// Its visibility timeout delivers it again.
		s.log.Warn("hand back task", "run_id", task.RunID, "err", err)
	}
}

// taskID is "<partition>/<stream entry id>".
func taskID(n int, entry string) string { return strconv.Itoa(n) + "/" + entry }

func (s *Store) parseTaskID(id string) (*partition, string, error) {
	n, entry, ok := strings.Cut(id, "/")
	i, err := strconv.Atoi(n)
	if !ok || err != nil || i < 0 || i >= len(s.parts) || !streamID.MatchString(entry) {
		return nil, "", fmt.Errorf("malformed task id %q", id)
	}
	return s.parts[i], entry, nil
}

// poller serves the Polls of one worker name.
type poller struct {
	s      *Store
	worker string
	// handoff passes tasks from readers to Polls.
	handoff chan backend.Task
	started sync.Once

	mu sync.Mutex
	// demand counts the worker's waiting Polls.
	demand demand
	held   map[string]backend.Task
}

func (s *Store) poller(worker string) *poller {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pollers[worker]
	if p == nil {
		p = &poller{s: s, worker: worker, handoff: make(chan backend.Task), demand: newDemand(),
			held: make(map[string]backend.Task)}
		s.pollers[worker] = p
	}
	return p
}

// start starts the readers, once, and the store's janitor with the first.
func (p *poller) start() {
	p.started.Do(func() {
		s := p.s
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-s.done:
			return
		default:
		}
		s.startJanitor()
		for _, part := range s.parts {
			s.wg.Add(1)
			go p.read(part)
		}
	})
}

// want adds n to the number of waiting Polls.
func (p *poller) want(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.demand.add(n)
}

// giveUp ends a waiting Poll whose context ended. If no other Poll waits,
// the worker is taken to have stopped polling: what its readers hold or
// read before it polls again goes back to the queue at once.
func (p *poller) giveUp() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.demand.add(-1)
	p.demand.stop()
}

// wantedNow returns a channel that is closed while a Poll waits.
func (p *poller) wantedNow() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.demand.wanted
}

// goneNow returns a channel that is closed while the worker has stopped
// polling (see giveUp).
func (p *poller) goneNow() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.demand.gone
}

// read is a reader: while a Poll waits, it takes tasks from its partition
// (a non-blocking take, then a blocking XREADGROUP) and offers them.
func (p *poller) read(part *partition) {
	s := p.s
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const backoffMin = 10 * time.Millisecond
	backoff := backoffMin
	for {
		select {
		case <-p.wantedNow():
		case <-s.done:
			return
		}
		task, ok, err := p.next(ctx, part)
		if s.closed() {
			if ok {
				s.giveBack(task)
			}
			return
		}
		if err != nil {
			// Log the first error of a streak only: Redis may be down
			// for a while, and go-redis reconnects by itself.
			if backoff == backoffMin {
				s.log.Warn("read tasks: retrying", "worker", p.worker, "partition", part.n, "err", err)
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
			s.log.Info("read tasks: recovered", "worker", p.worker, "partition", part.n)
			backoff = backoffMin
		}
		if ok {
			p.offer(task)
		}
	}
}

// next takes the partition's next task: a non-blocking take first, then a
// read that blocks up to blockFor.
func (p *poller) next(ctx context.Context, part *partition) (backend.Task, bool, error) {
	s := p.s
	tasks, err := s.take(ctx, part, p.worker, 1, nil)
	if err != nil || len(tasks) > 0 {
		return first(tasks), len(tasks) > 0, err
	}
	streams, err := s.client.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: group, Consumer: p.worker, Streams: []string{part.keys.tasks, ">"}, Count: 1, Block: blockFor,
	}).Result()
	if errors.Is(err, goredis.Nil) || len(streams) == 0 {
		return backend.Task{}, false, nil
	}
	if err != nil {
		return backend.Task{}, false, fmt.Errorf("read partition %d: %w", part.n, err)
	}
	// Record the delivery: its in-flight deadline, and the end of its
	// queued mark. Until this is done, only the janitor would see the
	// entry again if this process died.
	tasks, err = s.take(context.WithoutCancel(ctx), part, "", 0, streams[0].Messages)
	return first(tasks), len(tasks) > 0, err
}

// offer hands task to a Poll, or back to the queue if no Poll wants one
// for holdFor, if the worker stopped polling, or if the store closes.
func (p *poller) offer(task backend.Task) {
	s := p.s
	p.mu.Lock()
	p.held[task.ID] = task
	p.mu.Unlock()
	t := time.NewTimer(holdFor)
	defer t.Stop()
	for {
		select {
		case p.handoff <- task:
			p.unhold(task.ID)
			return
		case <-s.done:
			if p.unhold(task.ID) {
				s.giveBack(task)
			}
			return
		case <-p.goneNow():
			// A Poll may have come since; else nobody will.
			select {
			case p.handoff <- task:
				p.unhold(task.ID)
			default:
				if p.unhold(task.ID) {
					s.giveBack(task)
				}
			}
			return
		case <-t.C:
			p.mu.Lock()
			idle := p.demand.waiting == 0
			p.mu.Unlock()
			if idle {
				if p.unhold(task.ID) {
					s.giveBack(task)
				}
				return
			}
			t.Reset(holdFor)
		}
	}
}

// unhold forgets a held task and reports whether it was still held: the
// caller then owns it.
func (p *poller) unhold(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.held[id]
	delete(p.held, id)
	return ok
}

// handBack hands the tasks that readers hold back to the queue (Close).
func (s *Store) handBack() {
	s.mu.Lock()
	var tasks []backend.Task
	for _, p := range s.pollers {
		p.mu.Lock()
		for id, t := range p.held {
			tasks = append(tasks, t)
			delete(p.held, id)
		}
		p.mu.Unlock()
	}
	s.mu.Unlock()
	for _, t := range tasks {
		s.giveBack(t)
	}
}

func first(tasks []backend.Task) backend.Task {
	if len(tasks) == 0 {
		return backend.Task{}
	}
	return tasks[0]
}
