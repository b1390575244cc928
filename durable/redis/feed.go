package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

var _ backend.Feed = (*Store)(nil)

const (
	// MaxFeedLen is about how many entries a run's feed keeps. Publish
	// trims the feed's stream with XADD MAXLEN ~, which keeps at least
	// this many entries and drops older ones a whole stream node at a
	// time, so a feed may hold somewhat more.
	MaxFeedLen = 10000
	// DefaultFeedLimit is the most entries ReadFeed returns when its limit
	// is 0 or less.
	DefaultFeedLimit = 1000
)

// feedField is the field of a feed entry that holds its data.
const feedField = "d"

// Publish implements backend.Feed. The feed is a Redis Stream under the
// run's hash tag, appended to with XADD and an automatic id, and capped at
// about MaxFeedLen entries. An entry's id is its stream id with both parts
// zero-padded to 20 digits ("<ms>-<seq>", 41 characters), so that ids
// compare as strings as stream ids do. A call that go-redis sends again
// after a lost reply may publish the entry twice.
//
// The feed expires with the run's other keys: the commit that ends a run
// sets its expiry on the feed too, and in the same round trip as the XADD
// Publish reads the expiry of the run's record and of the feed, and fixes
// the feed's in a second one if they disagree (rare: a publish to an ended
// run, or to a run whose record does not exist). A feed published to
// while its run does not exist (not yet, or no more) expires after the
// store's retention unless a later Publish finds the run alive. With a
// retention of 0, feeds are kept for good, as runs are. These fixes race
// with a commit that ends or retries the run in between; a feed that
// loses the race expires early or lives on, capped, as the feed is not
// the truth of a run.
func (s *Store) Publish(ctx context.Context, runID string, entries ...[]byte) ([]string, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	rk := s.runKeys(runID)
	adds := make([]*goredis.StringCmd, len(entries))
	var runTTL, feedTTL *goredis.DurationCmd
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, data := range entries {
			adds[i] = p.XAdd(ctx, &goredis.XAddArgs{Stream: rk.feed, MaxLen: MaxFeedLen, Approx: true, ID: "*",
				Values: []any{feedField, data}})
		}
		runTTL = p.PTTL(ctx, rk.run)
		feedTTL = p.PTTL(ctx, rk.feed)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", runID, err)
	}
	ids := make([]string, len(adds))
	for i, add := range adds {
		if ids[i], err = encodeFeedID(add.Val()); err != nil {
			return nil, fmt.Errorf("publish to %s: %w", runID, err)
		}
	}
	// PTTL gives -2 for a key that does not exist, -1 for one that does
	// not expire.
	var fix *goredis.BoolCmd
	switch run, feed := runTTL.Val(), feedTTL.Val(); {
	case run > 0 && feed == -1:
		// The run ended; its keys expire.
		fix = s.client.PExpire(ctx, rk.feed, run)
	case run == -1 && feed >= 0:
		// The run lives (or its keys are kept for good).
		fix = s.client.Persist(ctx, rk.feed)
	case run == -2 && feed == -1 && s.retention > 0:
		// No run: it is yet to be created, or it expired.
		fix = s.client.PExpire(ctx, rk.feed, s.retention)
	}
	if fix != nil && fix.Err() != nil {
		// The entry is published; what failed is its feed's expiry, which
		// the next Publish or the run's end sets again.
		s.log.Warn("publish: set the feed's expiry", "run_id", runID, "err", fix.Err())
	}
	return ids, nil
}

// ReadFeed implements backend.Feed. after must be "" or an id that Publish
// returned (any "<ms>-<seq>" of decimal numbers is taken); any other gives
// an error at once. Like Poll, a call with a done context still returns the
// entries that are ready, and ctx's error only if there are none.
//
// It reads with XREAD BLOCK, in slices of blockFor, so a waiting ReadFeed
// holds one connection of the client's pool. As in WatchRun the blocking
// read runs in its own goroutine, so that ReadFeed returns as soon as ctx
// is done (go-redis does not interrupt a blocked read); the read ends on
// its own within blockFor.
func (s *Store) ReadFeed(ctx context.Context, runID, after string, limit int) ([]backend.FeedEntry, error) {
	from := "0-0"
	if after != "" {
		id, err := decodeFeedID(after)
		if err != nil {
			return nil, fmt.Errorf("read feed %s: %w", runID, err)
		}
		from = id
	}
	if limit <= 0 {
		limit = DefaultFeedLimit
	}
	key := s.runKeys(runID).feed
	if ctx.Err() != nil {
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		entries, err := s.readFeed(bg, key, from, limit, -1)
		switch {
		case err != nil:
			return nil, fmt.Errorf("read feed %s: %w", runID, err)
		case len(entries) == 0:
			return nil, fmt.Errorf("read feed %s: %w", runID, ctx.Err())
		}
		return entries, nil
	}
	type result struct {
		entries []backend.FeedEntry
		err     error
	}
	for {
		read := make(chan result, 1)
		go func() {
			entries, err := s.readFeed(context.WithoutCancel(ctx), key, from, limit, blockFor)
			read <- result{entries, err}
		}()
		select {
		case r := <-read:
			if r.err != nil {
				return nil, fmt.Errorf("read feed %s: %w", runID, r.err)
			}
			if len(r.entries) > 0 {
				return r.entries, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("read feed %s: %w", runID, ctx.Err())
		}
	}
}

// readFeed reads up to limit entries of the feed stream key after the
// stream id from, blocking up to block for the first (not at all if block
// is negative). It returns no entries and no error if none came.
func (s *Store) readFeed(ctx context.Context, key, from string, limit int, block time.Duration) ([]backend.FeedEntry, error) {
	streams, err := s.client.XRead(ctx, &goredis.XReadArgs{
		Streams: []string{key, from}, Count: int64(limit), Block: block,
	}).Result()
	if err == goredis.Nil {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []backend.FeedEntry
	for _, st := range streams {
		for _, msg := range st.Messages {
			id, err := encodeFeedID(msg.ID)
			if err != nil {
				return nil, err
			}
			data, err := field(msg, feedField)
			if err != nil {
				return nil, fmt.Errorf("feed entry %s: %v", msg.ID, err)
			}
			entries = append(entries, backend.FeedEntry{ID: id, Data: data})
		}
	}
	return entries, nil
}

// encodeFeedID turns a stream id into a feed entry id: both parts
// zero-padded to 20 digits, the most a uint64 takes.
func encodeFeedID(streamID string) (string, error) {
	ms, seq, ok := parseStreamID(streamID)
	if !ok {
		return "", fmt.Errorf("unexpected stream id %q", streamID)
	}
	return fmt.Sprintf("%020d-%020d", ms, seq), nil
}

// decodeFeedID turns a feed entry id back into a stream id, which Redis
// wants without leading zeros.
func decodeFeedID(id string) (string, error) {
	ms, seq, ok := parseStreamID(id)
	if !ok {
		return "", fmt.Errorf("malformed feed entry id %q", id)
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq, 10), nil
}

// parseStreamID splits "<ms>-<seq>", two decimal numbers that fit in a
// uint64, padded or not.
func parseStreamID(id string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}
