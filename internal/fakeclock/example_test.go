package fakeclock_test

import (
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/internal/fakeclock"
)

// Time moves only when told to; what comes due runs, in time order, before
// Advance returns.
func Example() {
	clock := fakeclock.New(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	fired := make(chan string, 2)
	clock.AfterFunc(time.Hour, func() { fired <- "an hour" })
	stop := clock.AfterFunc(2*time.Hour, func() { fired <- "two hours" })

	clock.Advance(90 * time.Minute)
	fmt.Println(<-fired, clock.Now().Format("15:04"))
	fmt.Println("stopped in time:", stop())
	_, pending := clock.Next()
	fmt.Println("pending:", pending)
	// Output:
	// an hour 10:30
	// stopped in time: true
	// pending: false
}
