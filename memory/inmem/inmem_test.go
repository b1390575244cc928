package inmem_test

import (
	"testing"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/inmem"
	"github.com/cairn-dev/cairn/memory/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) memory.Store { return inmem.New() })
}
