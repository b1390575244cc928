package redis_test

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

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
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	publish := func(id string) {
		t.Helper()
		if _, err := s.Publish(ctx, id, []byte("progress")); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(id string, status backend.Status) {
		t.Helper()
		lease, err := s.Lease(ctx, id, "w1", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		c := backend.Commit{Lease: lease, Expect: int64(info.HistoryLen), Run: backend.RunInfo{Status: status}, Release: true}
		if err := s.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	expires := func(d time.Duration) bool { return d > 0 && d <= time.Hour }

	// Published to while running, then ended.
	mustCreate(t, s, "before")
	publish("before")
	if d := ttl("before"); d != -1 {
		t.Errorf("feed of a running run has TTL %v; want none", d)
	}
	commit("before", backend.StatusCompleted)
	if d := ttl("before"); !expires(d) {
		t.Errorf("feed of a run that ended has TTL %v; want the retention", d)
	}
	// Retried: the feed is kept again, with the run's other keys.
	commit("before", backend.StatusRunning)
	if d := ttl("before"); d != -1 {
		t.Errorf("feed of a retried run has TTL %v; want none", d)
	}

	// Published to only after the run ended.
	mustCreate(t, s, "after")
	commit("after", backend.StatusFailed)
	publish("after")
	if d := ttl("after"); !expires(d) {
		t.Errorf("feed published to after its run ended has TTL %v; want the retention", d)
	}

	// Published to before the run exists.
	publish("early")
	if d := ttl("early"); !expires(d) {
		t.Errorf("feed of a run that does not exist has TTL %v; want the retention", d)
	}
	mustCreate(t, s, "early")
	publish("early")
	if d := ttl("early"); d != -1 {
		t.Errorf("feed of a run created since has TTL %v; want none", d)
	}
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
		if _, err := s.Publish(ctx, id, []byte("progress")); err != nil {
			t.Fatal(err)
		}
		if d := srv.Client().PTTL(ctx, "cairn:{r:"+id+"}:feed").Val(); d != -1 {
			t.Errorf("feed of %s has TTL %v; want none", id, d)
		}
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
		if err != nil {
			t.Fatal(err)
		}
		id := ids[0]
		if !form.MatchString(id) {
			t.Fatalf("Publish gave id %q; want <20 digits>-<20 digits>", id)
		}
		last = id
	}
	entries, err := s.ReadFeed(ctx, "r1", "", 0)
	if err != nil || len(entries) != 3 || entries[2].ID != last {
		t.Fatalf("ReadFeed = %v, %v; want 3 entries ending with %q", entries, err, last)
	}
	// An unpadded stream id is taken too.
	if entries, err := s.ReadFeed(ctx, "r1", "1-0", 1); err != nil || len(entries) != 1 {
		t.Fatalf("ReadFeed after 1-0 = %v, %v; want the first entry", entries, err)
	}

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
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("ReadFeed returned %v after its context was canceled; want at once", took)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled ReadFeed: %v; want context.Canceled", err)
		}
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
		if _, err := s.Publish(ctx, "r1", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	n, err := srv.Client().XLen(ctx, "cairn:{r:r1}:feed").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n < redis.MaxFeedLen || n >= redis.MaxFeedLen+extra {
		t.Errorf("feed holds %d entries after %d were published; want about %d", n, redis.MaxFeedLen+extra, redis.MaxFeedLen)
	}
	if entries, err := s.ReadFeed(ctx, "r1", "", 0); err != nil || len(entries) != redis.DefaultFeedLimit {
		t.Fatalf("ReadFeed with limit 0 = %d entries, %v; want %d", len(entries), err, redis.DefaultFeedLimit)
	}
}
