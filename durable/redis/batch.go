package redis

import (
	"context"
	"errors"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// Group commit. The calls of a run's life that a worker makes many of at
// once across its runs (Commit, Lease, Send, Ack) do not each take a
// round trip of their own: they queue their commands, and a few flushers
// send what is queued together, in one pipeline, as soon as one of them is
// free. A lone call is sent at once (a flusher waits for it), so batching
// adds no latency when there is nothing to batch; under load, the calls
// that arrive while the flushers are busy go out together in the next
// pipeline, which costs Redis and the worker a fraction of the syscalls.
// Each call's commands stay what they were, each script atomic and fenced
// on its own; only their trip is shared.
//
// On a Redis Cluster the calls are not batched: a pipeline there waits for
// every node it touches, so one slow or dead node would hold up the calls
// of runs that do not need it.

const (
	// flushers is how many pipelines a store has in flight at once.
	flushers = 4
	// batchMax caps the calls one pipeline carries.
	batchMax = 128
)

// errClosed is the error of calls made on a closed store.
var errClosed = errors.New("store closed")

// batchCall is one call's commands, waiting for a flusher.
type batchCall struct {
	ctx  context.Context
	fill func(p goredis.Pipeliner)
	cmds []goredis.Cmder // the call's commands, once sent
	err  error           // the first error of cmds, or the pipeline's
	done chan struct{}
}

// batcher is the queue of calls and its flushers.
type batcher struct {
	calls chan *batchCall
	start sync.Once
}

func newBatcher() *batcher { return &batcher{calls: make(chan *batchCall, batchMax)} }

// batch sends the commands fill adds to a pipeline, together with those of
// other calls made at the same time, and returns them, with the first error
// among them. If ctx ends first, or the store closes, it returns an error
// at once; the commands may still be sent. On a Cluster it is s.pipe.
func (s *Store) batch(ctx context.Context, fill func(p goredis.Pipeliner)) ([]goredis.Cmder, error) {
	if s.cluster {
		return s.pipe(ctx, fill)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := s.batcher
	b.start.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed() {
			return
		}
		for range flushers {
			s.wg.Add(1)
			go s.flush()
		}
	})
	c := &batchCall{ctx: ctx, fill: fill, done: make(chan struct{})}
	select {
	case b.calls <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, errClosed
	}
	select {
	case <-c.done:
		return c.cmds, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, errClosed
	}
}

// flush is a flusher: it takes the calls queued, up to batchMax, sends
// them in one pipeline, and hands each its commands.
func (s *Store) flush() {
	defer s.wg.Done()
	b := s.batcher
	for {
		var first *batchCall
		select {
		case first = <-b.calls:
		case <-s.done:
			s.failQueued()
			return
		}
		calls := []*batchCall{first}
	more:
		for len(calls) < batchMax {
			select {
			case c := <-b.calls:
				calls = append(calls, c)
			default:
				break more
			}
		}
		s.send(calls)
	}
}

// send sends calls in one pipeline. A call whose context ended before it
// was sent is not sent.
func (s *Store) send(calls []*batchCall) {
	live := calls[:0:0]
	for _, c := range calls {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			close(c.done)
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	// The pipeline is shared: no one call's context may cut it short. A
	// caller that stops waiting returns at once (see batch); go-redis's
	// read and write timeouts bound the pipeline.
	ctx := context.WithoutCancel(live[0].ctx)
	ends := make([]int, len(live))
	cmds, err := s.pipe(ctx, func(p goredis.Pipeliner) {
		for i, c := range live {
			c.fill(p)
			ends[i] = p.Len()
		}
	})
	start := 0
	for i, c := range live {
		if len(cmds) >= ends[i] {
			c.cmds = cmds[start:ends[i]]
			c.err = firstErr(cmdErrs(c.cmds)...)
		}
		if c.cmds == nil && err != nil {
			c.err = err
		}
		start = ends[i]
		close(c.done)
	}
}

// failQueued ends the calls still queued when the store closes.
func (s *Store) failQueued() {
	for {
		select {
		case c := <-s.batcher.calls:
			c.err = errClosed
			close(c.done)
		default:
			return
		}
	}
}

func cmdErrs(cmds []goredis.Cmder) []error {
	errs := make([]error, len(cmds))
	for i, cmd := range cmds {
		errs[i] = cmd.Err()
	}
	return errs
}
