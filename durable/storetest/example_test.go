package storetest_test

import (
	"testing"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/storetest"
)

// A store's own test runs the suite with a constructor that builds a fresh
// store around the clock the suite gives it.
func ExampleRun() {
	_ = func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, clock backend.Clock) backend.Store {
			return inmem.New(inmem.WithClock(clock))
		})
	}
}
