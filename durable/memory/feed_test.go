package memory_test

import (
	"fmt"
	"testing"

	"github.com/cairn-dev/cairn/durable/memory"
)

// TestFeedCap checks that a feed keeps its last MaxFeedLen entries.
func TestFeedCap(t *testing.T) {
	ctx := t.Context()
	s := memory.New()
	var ids []string
	for i := range memory.MaxFeedLen + 5 {
		id, err := s.Publish(ctx, "r1", []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id...)
	}
	entries, err := s.ReadFeed(ctx, "r1", "", memory.MaxFeedLen+100)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != memory.MaxFeedLen {
		t.Fatalf("ReadFeed = %d entries; want %d", len(entries), memory.MaxFeedLen)
	}
	if entries[0].ID != ids[5] || string(entries[0].Data) != "5" {
		t.Fatalf("oldest entry kept = %q %q; want %q 5", entries[0].ID, entries[0].Data, ids[5])
	}
	// Reading after a dropped entry reads from the oldest kept.
	entries, err = s.ReadFeed(ctx, "r1", ids[1], 1)
	if err != nil || len(entries) != 1 || entries[0].ID != ids[5] {
		t.Fatalf("ReadFeed after a dropped entry = %v, %v; want %q", entries, err, ids[5])
	}
	if entries, err := s.ReadFeed(ctx, "r1", "", 0); err != nil || len(entries) != memory.DefaultFeedLimit {
		t.Fatalf("ReadFeed with limit 0 = %d entries, %v; want %d", len(entries), err, memory.DefaultFeedLimit)
	}
}
