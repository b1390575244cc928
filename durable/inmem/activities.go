package inmem

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/cairn-dev/cairn/durable/backend"
)

var _ backend.ActivityQueue = (*Store)(nil)

// PushActivity implements backend.ActivityQueue.
func (s *Store) PushActivity(ctx context.Context, queue string, attempt []byte) error {
	if queue == "" {
		return fmt.Errorf("push activity: empty queue name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.activities[queue] = append(s.activities[queue], bytes.Clone(attempt))
	s.notify()
	return nil
}

// PollActivity implements backend.ActivityQueue. Queues are tried in the
// order given.
func (s *Store) PollActivity(ctx context.Context, worker string, queues []string) (backend.ActivityTask, error) {
	var task backend.ActivityTask
	err := s.await(ctx, func() bool {
		s.tick()
		for _, q := range queues {
			if pending := s.activities[q]; len(pending) > 0 {
				s.activities[q] = pending[1:]
				s.lastTask++
				task = backend.ActivityTask{Queue: q, ID: "a" + strconv.FormatInt(s.lastTask, 10), Attempt: pending[0]}
				s.actOut[task.ID] = task
				s.addDeadline(deadline{at: s.clock.Now().Add(s.visibility), kind: activityDue, task: task.ID})
				task.Attempt = bytes.Clone(task.Attempt)
				return true
			}
		}
		return false
	})
	if err != nil {
		return backend.ActivityTask{}, fmt.Errorf("poll activity: %w", err)
	}
	return task, nil
}

// AckActivity implements backend.ActivityQueue.
func (s *Store) AckActivity(ctx context.Context, task backend.ActivityTask) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.actOut, task.ID)
	return nil
}
