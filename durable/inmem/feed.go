package inmem

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/cairn-dev/cairn/durable/backend"
)

var _ backend.Feed = (*Store)(nil)

const (
	// MaxFeedLen is how many entries a run's feed keeps: publishing one
	// more drops the oldest.
	MaxFeedLen = 10000
	// DefaultFeedLimit is the most entries ReadFeed returns when its limit
	// is 0 or less.
	DefaultFeedLimit = 1000
)

// feed is a run's progress feed. The in-memory store drops no run, so feeds
// live as long as the store; each holds at most MaxFeedLen entries.
type feed struct {
	last    uint64        // sequence number of the last entry published
	entries []feedEntry   // the most recent entries, oldest first
	changed chan struct{} // closed and replaced when an entry is published
}

type feedEntry struct {
	seq  uint64
	data []byte
}

// feed returns the feed of runID, making an empty one if there is none.
// s.mu must be held.
func (s *Store) feed(runID string) *feed {
	f, ok := s.feeds[runID]
	if !ok {
		f = &feed{changed: make(chan struct{})}
		s.feeds[runID] = f
	}
	return f
}

// Publish implements backend.Feed. Entry ids are sequence numbers from 1,
// as 20 zero-padded decimal digits ("00000000000000000001"), so they
// compare as strings as they do as numbers. The feed keeps its last
// MaxFeedLen entries. The run need not exist.
func (s *Store) Publish(ctx context.Context, runID string, entries ...[]byte) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feed(runID)
	ids := make([]string, 0, len(entries))
	for _, data := range entries {
		f.last++
		f.entries = append(f.entries, feedEntry{seq: f.last, data: bytes.Clone(data)})
		if len(f.entries) > MaxFeedLen {
			f.entries[0] = feedEntry{} // let the data go before the array does
			f.entries = f.entries[1:]
		}
		ids = append(ids, feedID(f.last))
	}
	close(f.changed)
	f.changed = make(chan struct{})
	return ids, nil
}

// ReadFeed implements backend.Feed. An after that is not "" must be a
// decimal number (the ids Publish returns are); any other gives an error at
// once. Like Poll, a call with a done context still returns the entries
// that are ready, and ctx's error only if there are none.
func (s *Store) ReadFeed(ctx context.Context, runID, after string, limit int) ([]backend.FeedEntry, error) {
	var seq uint64
	if after != "" {
		n, err := strconv.ParseUint(after, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("read feed %s: malformed entry id %q", runID, after)
		}
		seq = n
	}
	if limit <= 0 {
		limit = DefaultFeedLimit
	}
	for {
		s.mu.Lock()
		f := s.feed(runID)
		i := sort.Search(len(f.entries), func(i int) bool { return f.entries[i].seq > seq })
		if n := min(len(f.entries)-i, limit); n > 0 {
			out := make([]backend.FeedEntry, n)
			for j, e := range f.entries[i : i+n] {
				out[j] = backend.FeedEntry{ID: feedID(e.seq), Data: bytes.Clone(e.data)}
			}
			s.mu.Unlock()
			return out, nil
		}
		changed := f.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("read feed %s: %w", runID, ctx.Err())
		}
	}
}

// feedID formats a feed entry's sequence number as its id.
func feedID(seq uint64) string {
	return fmt.Sprintf("%020d", seq)
}
