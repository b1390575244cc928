package cli_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
)

// TestDamagedHistory appends an entry no commit wrote to a run's history
// list, as by hand: the run parks with a readable reason and stops
// being written, show prints its record and history up to the entry and
// how to repair it, and once the entry is removed resume finishes it with
// the approval given while it was damaged.
func TestDamagedHistory(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(supportAgent(), "refund-9", agent.Input{Message: "Refund 120 euros."}, backend.StatusAwaitingApproval)
	info := w.waitStatus("refund-9", backend.StatusAwaitingApproval)
	key := redis.DefaultPrefix + ":{r:refund-9}:history"
	rdb := w.store.Client()
	require.NoError(t, rdb.RPush(t.Context(), key, "not an event").Err())

	// The approval is sent (approve reads the call from the run's record,
	// not its history) and brings a worker, which finds the damage and
	// parks the run; the approval waits in its inbox.
	w.check("approve_damaged", 0, "approve", "refund-9", "call_1_0", "--by", "alice@example.com")
	parked := w.waitStatus("refund-9", backend.StatusParked)
	require.NotNil(t, parked.Failure)
	assert.Equal(t, backend.KindCorrupt, parked.Failure.Kind)
	time.Sleep(2500 * time.Millisecond) // more than a lease: no write loop
	again := w.waitStatus("refund-9", backend.StatusParked)
	assert.Equal(t, parked.Version, again.Version, "the parked run's record keeps changing")

	w.check("show_damaged", 0, "show", "refund-9")
	r := w.cairn("show", "refund-9", "--json")
	require.Equal(t, 0, r.code, r.err)
	var shown struct {
		History []backend.Event `json:"history"`
		Damaged struct {
			Position int64 `json:"position"`
			Foreign  int64 `json:"foreign"`
		} `json:"damaged"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.out), &shown))
	assert.Len(t, shown.History, int(info.HistoryLen))
	assert.Equal(t, info.HistoryLen+1, shown.Damaged.Position)
	assert.Equal(t, int64(1), shown.Damaged.Foreign)

	// The repair show prints, then resume.
	require.NoError(t, rdb.LTrim(t.Context(), key, 0, info.HistoryLen-1).Err())
	w.check("resume_repaired", 0, "resume", "refund-9")
	w.waitStatus("refund-9", backend.StatusCompleted)
}
