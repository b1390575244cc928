package inmem

import (
	"bytes"
	"context"
	"testing"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/storetest"
)

// damaged is a Store that can append to a history without a commit, for
// the conformance suite's damaged-history case.
type damaged struct{ *Store }

var _ storetest.Damager = damaged{}

func (d damaged) AppendForeign(ctx context.Context, runID string, entry []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.lookup(runID)
	if err != nil {
		return err
	}
	r.history = append(r.history, bytes.Clone(entry))
	return nil
}

func TestConformanceDamaged(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock backend.Clock) backend.Store {
		return damaged{New(WithClock(clock))}
	})
}
