package inmem

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Lease implements backend.Store. A lease is expired once the clock reaches
// its Expires; an expired lease gets a new token even when its holder
// takes it again. ttl must be positive.
func (s *Store) Lease(ctx context.Context, runID, worker string, ttl time.Duration) (backend.Lease, error) {
	if ttl <= 0 {
		return backend.Lease{}, fmt.Errorf("lease %s: ttl %v is not positive", runID, ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(runID)
	if err != nil {
		return backend.Lease{}, fmt.Errorf("lease: %w", err)
	}
	now := s.clock.Now()
	live := r.held && now.Before(r.lease.Expires)
	takenOver := false
	switch {
	case live && r.lease.Worker != worker:
		return backend.Lease{}, fmt.Errorf("lease %s: %w: %s", runID, backend.ErrLeaseHeld, r.lease.Worker)
	case live:
		r.lease.Expires = now.Add(ttl)
	default:
		takenOver = r.held // and expired
		r.lease = backend.Lease{RunID: runID, Worker: worker, Token: r.lease.Token + 1, Expires: now.Add(ttl)}
		r.held = true
	}
	s.addDeadline(deadline{at: r.lease.Expires, kind: leaseDue, run: runID, token: r.lease.Token})
	lease := r.lease
	lease.Pending = len(r.inbox)
	lease.TakenOver = takenOver
	return lease, nil
}

// Commit implements backend.Store. A lease that expired is still current
// until another Lease call takes it. Consumed ids not in the inbox are
// ignored.
func (s *Store) Commit(ctx context.Context, c backend.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	runID := c.Lease.RunID
	r, err := s.lookup(runID)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if !r.held || r.lease.Token != c.Lease.Token {
		return fmt.Errorf("commit %s: %w: token %d", runID, backend.ErrFenced, c.Lease.Token)
	}
	if n := r.info.HistoryLen; n != c.Expect {
		return fmt.Errorf("commit %s: %w: history has %d events, commit expects %d", runID, backend.ErrConflict, n, c.Expect)
	}
	if n := int64(len(r.history)); n != c.Expect && len(c.Events) > 0 && !c.NewHistory {
		return fmt.Errorf("commit %s: %w: record says %d events, history holds %d", runID, backend.ErrCorruptHistory, c.Expect, n)
	}

	info := cloneInfo(c.Run)
	info.Inbox = 0 // counted when read
	prev := r.info
	info.ID, info.Workflow, info.InputHash = prev.ID, prev.Workflow, prev.InputHash
	info.ParentID, info.ParentStep, info.CreatedAt = prev.ParentID, prev.ParentStep, prev.CreatedAt
	info.Generation = prev.Generation
	info.HistoryLen = prev.HistoryLen
	info.SpansExported = prev.SpansExported
	if c.NewHistory {
		info.SpansExported = 0
		r.history = cloneAll(c.Events)
		info.Generation++
		info.HistoryLen = int64(len(r.history))
	} else if len(c.Events) > 0 {
		r.history = append(r.history, cloneAll(c.Events)...)
		info.HistoryLen = int64(len(r.history))
	}
	info.UpdatedAt = s.clock.Now()
	info.Version = prev.Version + 1
	if backend.MovesOn(prev.Status, c) {
		r.moved = info.Version
	}
	r.info = info
	r.inbox = slices.DeleteFunc(r.inbox, func(e backend.InboxEntry) bool {
		return slices.Contains(c.Consumed, e.ID)
	})
	s.notify()

	if c.Release {
		r.held = false
		if len(r.inbox) > 0 && !info.Status.Dormant() {
			s.enqueue(r)
		}
	}
	r.wakeAt = info.WakeAt
	if !info.WakeAt.IsZero() {
		s.addDeadline(deadline{at: r.wakeAt, kind: wakeDue, run: runID})
	}
	return nil
}
