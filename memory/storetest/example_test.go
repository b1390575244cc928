package storetest_test

import (
	"testing"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/memstore"
	"github.com/cairn-dev/cairn/memory/storetest"
)

// A store's own test runs the suite with a constructor that returns a
// fresh, empty store for each subtest.
func ExampleRun() {
	_ = func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) memory.Store { return memstore.New() })
	}
}
