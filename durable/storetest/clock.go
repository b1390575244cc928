package storetest

import (
	"sync"
	"time"

	"github.com/cairn-dev/cairn/durable"
)

var _ durable.Clock = (*ManualClock)(nil)

// ManualClock is a durable.Clock whose time moves only when Advance is
// called, so that tests can skip over wake times, lease expiries and
// visibility timeouts without sleeping. It is safe for concurrent use.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*manualTimer]struct{}
}

// manualTimer is a call scheduled by AfterFunc.
type manualTimer struct {
	at time.Time
	f  func()
}

// NewManualClock returns a clock that reads start until it is advanced.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{now: start, timers: make(map[*manualTimer]struct{})}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc calls f in its own goroutine once Advance has moved the clock
// d past the current time; a d of zero or less calls it at once. stop
// cancels the call and reports whether it did so before f was started.
func (c *ManualClock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	if d <= 0 {
		go f()
		return func() bool { return false }
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{at: c.now.Add(d), f: f}
	c.timers[t] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, pending := c.timers[t]
		delete(c.timers, t)
		return pending
	}
}

// Advance moves the clock forward by d and starts, each in its own
// goroutine, the calls whose time has come. It does not wait for them.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.at.After(c.now) {
			delete(c.timers, t)
			go t.f()
		}
	}
}
