package backend

import "time"

// Clock tells the time and schedules calls. Workers and stores take one so
// that tests can replace real time with a fake clock that skips ahead
// (durabletest.Clock). Implementations are safe for concurrent use.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed on this
	// clock. stop cancels the call and reports whether it did so before f
	// was called.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock returns the clock of the operating system.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
