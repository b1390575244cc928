package inmem_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/inmem"
)

// TestFeedCap checks that a feed keeps its last MaxFeedLen entries.
func TestFeedCap(t *testing.T) {
	ctx := t.Context()
	s := inmem.New()
	var ids []string
	for i := range inmem.MaxFeedLen + 5 {
		id, err := s.Publish(ctx, "r1", []byte(fmt.Sprint(i)))
		require.NoError(t, err)
		ids = append(ids, id...)
	}
	entries, err := s.ReadFeed(ctx, "r1", "", inmem.MaxFeedLen+100)
	require.NoError(t, err)
	// Lengths compared, not assert.Len: that would print thousands of entries.
	require.Equal(t, inmem.MaxFeedLen, len(entries), "ReadFeed entries")
	assert.Equal(t, ids[5], entries[0].ID, "oldest entry kept")
	assert.Equal(t, "5", string(entries[0].Data), "oldest entry kept")
	// Reading after a dropped entry reads from the oldest kept.
	entries, err = s.ReadFeed(ctx, "r1", ids[1], 1)
	require.NoError(t, err, "ReadFeed after a dropped entry")
	require.Len(t, entries, 1, "ReadFeed after a dropped entry")
	assert.Equal(t, ids[5], entries[0].ID, "ReadFeed after a dropped entry")
	entries, err = s.ReadFeed(ctx, "r1", "", 0)
	require.NoError(t, err, "ReadFeed with limit 0")
	assert.Equal(t, inmem.DefaultFeedLimit, len(entries), "ReadFeed with limit 0 entries")
}
