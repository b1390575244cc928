package durabletest

import (
	"time"

	"github.com/cairn-dev/cairn/internal/fakeclock"
)

// Clock is a fake backend.Clock whose time moves only when told to, so that
// tests skip over timers, retries, timeouts and lease expiries without
// sleeping: Now reads it, Advance and AdvanceTo move it (calling what comes
// due, in time order, each at its own time), Next tells when the earliest
// pending call is due. It is safe for concurrent use. An Env has one
// (Env.Clock); stores under test take one too (see durable/storetest).
type Clock = fakeclock.Clock

// NewClock returns a clock that reads start until it is moved.
func NewClock(start time.Time) *Clock { return fakeclock.New(start) }
