package storetest

import (
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Span export marks (backend.ExportMarker) and the leases that tell a
// worker whether it took a run over from a dead one.

// testLeaseTakenOver: only a lease taken from an expired holder is taken
// over; a first lease, an extension, and one taken after a release are not.
func testLeaseTakenOver(e *env) {
	e.create("r1")
	l := e.lease("r1", "w1", 10*time.Second)
	assert.False(e.t, l.TakenOver, "the first lease")
	assert.False(e.t, e.lease("r1", "w1", 10*time.Second).TakenOver, "an extended lease")
	c := step(l, 1)
	c.Release = true
	e.commit(c)
	l = e.lease("r1", "w2", 10*time.Second)
	assert.False(e.t, l.TakenOver, "a lease taken after a release")
	e.clock.Advance(11 * time.Second)
	l = e.lease("r1", "w3", 10*time.Second)
	assert.True(e.t, l.TakenOver, "a lease taken from an expired one")
	assert.False(e.t, e.lease("r1", "w3", 10*time.Second).TakenOver, "an extension of a lease taken over")
}

func testExportMarks(e *env, m backend.ExportMarker) {
	e.create("r1")
	e.create("r2")
	l := e.lease("r1", "w1", 10*time.Second)
	e.commit(step(l, 1, "r1/2", "r1/3"))
	assert.Zero(e.t, e.get("r1").SpansExported, "SpansExported of a run never marked")

	before := e.get("r1")
	require.NoError(e.t, m.MarkExported(e.ctx(), []backend.ExportMark{
		{RunID: "r1", Position: 2}, {RunID: "r2", Position: 1}, {RunID: "nobody", Position: 4}}))
	after := e.get("r1")
	assert.Equal(e.t, int64(2), after.SpansExported, "SpansExported after a mark")
	assert.Equal(e.t, before.Version, after.Version, "a mark changes the record's Version")
	assert.Equal(e.t, int64(1), e.get("r2").SpansExported, "SpansExported of the second run marked")

	require.NoError(e.t, m.MarkExported(e.ctx(), []backend.ExportMark{{RunID: "r1", Position: 1}}))
	assert.Equal(e.t, int64(2), e.get("r1").SpansExported, "a lower mark lowered SpansExported")
	require.NoError(e.t, m.MarkExported(e.ctx(), []backend.ExportMark{{RunID: "r1", Generation: 1, Position: 3}}))
	assert.Equal(e.t, int64(2), e.get("r1").SpansExported, "a mark of another generation was recorded")

	// Commits keep the mark; a new history starts unmarked.
	e.commit(step(l, 3, "r1/4"))
	assert.Equal(e.t, int64(2), e.get("r1").SpansExported, "SpansExported after a commit")
	c := step(l, 4, "r1/gen1/1")
	c.NewHistory = true
	e.commit(c)
	assert.Zero(e.t, e.get("r1").SpansExported, "SpansExported of a new history")
	require.NoError(e.t, m.MarkExported(e.ctx(), []backend.ExportMark{{RunID: "r1", Position: 4}}))
	assert.Zero(e.t, e.get("r1").SpansExported, "a mark of the earlier history was recorded on the new one")
	require.NoError(e.t, m.MarkExported(e.ctx(), []backend.ExportMark{{RunID: "r1", Generation: 1, Position: 1}}))
	assert.Equal(e.t, int64(1), e.get("r1").SpansExported, "SpansExported of the new history after a mark")
	require.NoError(e.t, m.MarkExported(e.ctx(), nil), "no marks")
}
