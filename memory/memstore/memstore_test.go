package memstore_test

import (
	"testing"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/memstore"
	"github.com/cairn-dev/cairn/memory/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) memory.Store { return memstore.New() })
}
