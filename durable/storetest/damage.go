package storetest

import (
	"context"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Damager is an optional capability of a store under test, not of
// backend.Store: AppendForeign appends entry to the run's history as a
// person or another program can, outside the store, without a commit
// (for Redis, an XADD at the next position). A store whose newStore
// returns a Damager gets the DamagedHistory case; others skip it.
type Damager interface {
	AppendForeign(ctx context.Context, runID string, entry []byte) error
}

// testDamagedHistory: a history holding an entry no commit wrote refuses
// appends but lets the lease holder write the record alone, as a park
// does (see backend.Store.Commit).
func testDamagedHistory(e *env) {
	d, ok := e.s.(Damager)
	if !ok {
		e.t.Skip("the store is not a storetest.Damager")
	}
	e.create("r1")
	e.send("r1", "m1")
	l := e.lease("r1", "w1", time.Minute)
	require.NoError(e.t, d.AppendForeign(e.ctx(), "r1", []byte("junk")))

	entries, err := e.s.ReadHistory(e.ctx(), "r1", 1)
	if err == nil {
		assert.Equal(e.t, [][]byte{[]byte("r1/1"), []byte("junk")}, entries, "a reader sees the foreign entry")
	} else {
		assert.ErrorIs(e.t, err, backend.ErrCorruptHistory)
		assert.Equal(e.t, [][]byte{[]byte("r1/1")}, entries, "entries before the damage")
	}
	before := e.get("r1")
	assert.Equal(e.t, int64(1), before.HistoryLen, "the record counts what was committed")

	e.commitErr(step(l, 2, "x"), backend.ErrConflict)
	e.commitErr(step(l, 1, "x"), backend.ErrCorruptHistory)
	assert.Equal(e.t, normalize(before), normalize(e.get("r1")), "record changed by a rejected commit")

	// The park: the record alone, at the record's count.
	info := before
	info.Status, info.Failure = backend.StatusParked, &backend.Failure{Kind: backend.KindCorrupt, Message: "damaged"}
	e.commit(backend.Commit{Lease: l, Expect: 1, Run: info, Release: true})
	after := e.get("r1")
	assert.Equal(e.t, backend.StatusParked, after.Status)
	assert.Equal(e.t, backend.KindCorrupt, after.Failure.Kind)
	assert.Equal(e.t, int64(1), after.HistoryLen)
	assert.Greater(e.t, after.Version, before.Version)
	assert.Len(e.t, e.inbox("r1"), 1, "messages wait for the run to be retried")
}
