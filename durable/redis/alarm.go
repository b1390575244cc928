package redis

import (
	"sync"
	"time"
)

// alarm is a call scheduled on the store's clock for the earliest deadline
// the store knows of in one deadline set: a partition's, or an activity
// queue's. Only the earliest is scheduled; what the alarm does when it
// rings runs a script that fires the due deadlines and tells of the next,
// which sets the alarm again.
type alarm struct {
	ring func() // what the alarm does; not called once the store is closed

	mu   sync.Mutex
	at   time.Time   // when it rings
	stop func() bool // cancels the scheduled call; nil if none is scheduled
	gen  uint64      // tells the current call from replaced ones
}

// setAlarm makes sure a rings no later than at.
func (s *Store) setAlarm(a *alarm, at time.Time) {
	if at.IsZero() || s.closed() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop != nil && !at.Before(a.at) {
		return
	}
	if a.stop != nil {
		a.stop()
	}
	a.gen++
	gen := a.gen
	a.at = at
	// A clock that moves between Now and AfterFunc (a fake clock advanced
	// by another goroutine) would schedule the call late: schedule again.
	for range 3 {
		now := s.clock.Now()
		a.stop = s.clock.AfterFunc(at.Sub(now), func() { s.rang(a, gen) })
		if s.clock.Now().Sub(now) < time.Millisecond {
			return
		}
		a.stop()
	}
	a.stop = s.clock.AfterFunc(at.Sub(s.clock.Now()), func() { s.rang(a, gen) })
}

// off cancels the alarm's scheduled call, if any.
func (a *alarm) off() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop != nil {
		a.stop()
		a.stop = nil
	}
	a.gen++
}

// rang is the scheduled call of a's generation gen.
func (s *Store) rang(a *alarm, gen uint64) {
	a.mu.Lock()
	if a.gen == gen {
		a.stop = nil
	}
	a.mu.Unlock()
	if !s.closed() {
		a.ring()
	}
}
