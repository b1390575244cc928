// Package fakeclock is a backend.Clock whose time moves only when told to.
// durable/durabletest offers it to workflow tests as durabletest.Clock; the
// store conformance suite (durable/storetest) uses it directly, so that the
// suite builds without the engine.
package fakeclock

import (
	"slices"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

var _ backend.Clock = (*Clock)(nil)

// Clock is a fake backend.Clock whose time moves only when told to, so that
// tests skip over timers, retries, timeouts and lease expiries without
// sleeping. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*clockTimer
}

type clockTimer struct {
	at  time.Time
	seq int // orders timers due at the same time
	f   func()
}

// New returns a clock that reads start until it is moved.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc calls f once the clock has been moved d past its current time;
// a d of zero or less calls it in a new goroutine at once. stop cancels the
// call and reports whether it did so before f was called.
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	if d <= 0 {
		go f()
		return func() bool { return false }
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &clockTimer{at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.timers, t)
		if i < 0 {
			return false
		}
		c.timers = slices.Delete(c.timers, i, i+1)
		return true
	}
}

// Advance moves the clock forward by d, calling the functions that come due
// in time order, each at its own time, before it returns.
func (c *Clock) Advance(d time.Duration) {
	c.AdvanceTo(c.Now().Add(d))
}

// AdvanceTo moves the clock to t (if t is later), calling the functions
// that come due in time order before it returns.
func (c *Clock) AdvanceTo(t time.Time) {
	for {
		c.mu.Lock()
		next := c.earliest()
		if next == nil || next.at.After(t) {
			if t.After(c.now) {
				c.now = t
			}
			c.mu.Unlock()
			return
		}
		c.timers = slices.DeleteFunc(c.timers, func(x *clockTimer) bool { return x == next })
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
	}
}

// Next returns the time of the earliest pending call.
func (c *Clock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.earliest(); t != nil {
		return t.at, true
	}
	return time.Time{}, false
}

func (c *Clock) earliest() *clockTimer {
	var first *clockTimer
	for _, t := range c.timers {
		if first == nil || t.at.Before(first.at) || (t.at.Equal(first.at) && t.seq < first.seq) {
			first = t
		}
	}
	return first
}
