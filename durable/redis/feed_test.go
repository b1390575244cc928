package redis_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestFeedRetention checks that a run's feed expires with the run's other
// keys, whether it was published to before or after the run ended, that
// the feed of a live run does not expire, and that the feed of a run that
// does not exist expires after the retention until the run exists.
func TestFeedRetention(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redis.WithRetention(time.Hour))
	ctx := t.Context()
	ttl := func(id string) time.Duration {
		t.Helper()
		d, err := srv.Client().PTTL(ctx, "cairn:{r:"+id+"}:feed").Result()
		require.NoError(t, err)
		return d
	}
	publish := func(id string) {
		t.Helper()
		_, err := s.Publish(ctx, id, []byte("progress"))
		require.NoError(t, err)
	}
	commit := func(id string, status backend.Status) {
		t.Helper()
		lease, err := s.Lease(ctx, id, "w1", time.Minute)
		require.NoError(t, err)
		info, err := s.GetRun(ctx, id)
		require.NoError(t, err)
		c := backend.Commit{Lease: lease, Expect: int64(info.HistoryLen), Run: backend.RunInfo{Status: status}, Release: true}
		require.NoError(t, s.Commit(ctx, c))
	}
	expires := func(d time.Duration) bool { return d > 0 && d <= time.Hour }

	// Published to while running, then ended.
	mustCreate(t, s, "before")
	publish("before")
	assert.Equal(t, time.Duration(-1), ttl("before"), "feed of a running run: want no TTL")
	commit("before", backend.StatusCompleted)
	d := ttl("before")
	assert.True(t, expires(d), "feed of a run that ended has TTL %v; want the retention", d)
	// Retried: the feed is kept again, with the run's other keys.
	commit("before", backend.StatusRunning)
	assert.Equal(t, time.Duration(-1), ttl("before"), "feed of a retried run: want no TTL")

	// Published to only after the run ended.
	mustCreate(t, s, "after")
	commit("after", backend.StatusFailed)
	publish("after")
	d = ttl("after")
	assert.True(t, expires(d), "feed published to after its run ended has TTL %v; want the retention", d)

	// Published to before the run exists.
	publish("early")
	d = ttl("early")
	assert.True(t, expires(d), "feed of a run that does not exist has TTL %v; want the retention", d)
	mustCreate(t, s, "early")
	publish("early")
	assert.Equal(t, time.Duration(-1), ttl("early"), "feed of a run created since: want no TTL")
}

// TestFeedKeptForGood checks that with a retention of 0 no feed expires.
func TestFeedKeptForGood(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redis.WithRetention(0))
	ctx := t.Context()
	for _, id := range []string{"nobody", "r1"} {
		if id == "r1" {
			mustCreate(t, s, id)
		}
		_, err := s.Publish(ctx, id, []byte("progress"))
		require.NoError(t, err)
		assert.Equal(t, time.Duration(-1), srv.Client().PTTL(ctx, "cairn:{r:"+id+"}:feed").Val(), "feed of %s: want no TTL", id)
	}
}

// TestFeedIDs checks the form of feed ids and that ReadFeed takes them
// back, and that a canceled ReadFeed returns at once, not at the end of its
// blocking read.
func TestFeedIDs(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redis.WithPrefix("ids"))
	ctx := t.Context()
	form := regexp.MustCompile(`^[0-9]{20}-[0-9]{20}$`)
	var last string
	for range 3 {
		ids, err := s.Publish(ctx, "r1", []byte("x"))
		require.NoError(t, err)
		require.NotEmpty(t, ids, "Publish gave no id")
		id := ids[0]
		require.Regexp(t, form, id, "Publish gave id %q; want <20 digits>-<20 digits>", id)
		last = id
	}
	entries, err := s.ReadFeed(ctx, "r1", "", 0)
	require.NoError(t, err, "ReadFeed")
	require.Len(t, entries, 3, "ReadFeed")
	assert.Equal(t, last, entries[2].ID, "ReadFeed: want the entries to end with the last published")
	// An unpadded stream id is taken too.
	entries, err = s.ReadFeed(ctx, "r1", "1-0", 1)
	require.NoError(t, err, "ReadFeed after 1-0")
	assert.Len(t, entries, 1, "ReadFeed after 1-0: want the first entry")

	wait, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := s.ReadFeed(wait, "r1", last, 0)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // the read blocks in Redis
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		took := time.Since(start)
		assert.LessOrEqual(t, took, 500*time.Millisecond, "ReadFeed returned %v after its context was canceled; want at once", took)
		assert.ErrorIs(t, err, context.Canceled, "canceled ReadFeed")
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFeed still blocked 5s after its context was canceled")
	}
}

// TestFeedCap checks that Publish trims a feed to about MaxFeedLen entries
// and that ReadFeed's default limit is DefaultFeedLimit.
func TestFeedCap(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL())
	ctx := t.Context()
	const extra = 500
	for range redis.MaxFeedLen + extra {
		_, err := s.Publish(ctx, "r1", []byte("x"))
		require.NoError(t, err)
	}
	n, err := srv.Client().XLen(ctx, "cairn:{r:r1}:feed").Result()
	require.NoError(t, err)
	const published = redis.MaxFeedLen + extra
	assert.GreaterOrEqual(t, n, int64(redis.MaxFeedLen), "feed holds %d entries after %d were published; want about %d", n, published, redis.MaxFeedLen)
	assert.Less(t, n, int64(published), "feed holds %d entries after %d were published; want about %d", n, published, redis.MaxFeedLen)
	entries, err := s.ReadFeed(ctx, "r1", "", 0)
	require.NoError(t, err, "ReadFeed with limit 0")
	// Not assert.Len: it would print every entry.
	assert.Equal(t, redis.DefaultFeedLimit, len(entries), "ReadFeed with limit 0: number of entries")
}
