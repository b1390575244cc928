package redis_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestArchiveRetention checks that a run's archive is one hash under the
// run's hash tag, written once per field, that it does not expire while
// the run is kept, that it expires with the run's other keys once the run
// ended (whether it was written before or after), is kept again when the
// run is retried, and is gone with the run when the retention passes: a
// run created again under the same id starts with an empty archive.
func TestArchiveRetention(t *testing.T) {
	srv := redistest.Start(t)
	const retention = time.Hour
	s := open(t, srv.URL(), redis.WithRetention(retention))
	ctx := t.Context()
	key := func(id string) string { return "cairn:{r:" + id + "}:archive" }
	ttl := func(id string) time.Duration {
		t.Helper()
		d, err := srv.Client().PTTL(ctx, key(id)).Result()
		require.NoError(t, err)
		return d
	}
	put := func(id string, blobs map[string]string) {
		t.Helper()
		m := map[string][]byte{}
		for k, v := range blobs {
			m[k] = []byte(v)
		}
		require.NoError(t, s.PutBlobs(ctx, id, m))
	}
	commit := func(id string, status backend.Status) {
		t.Helper()
		lease, err := s.Lease(ctx, id, "w1", time.Minute)
		require.NoError(t, err)
		info, err := s.GetRun(ctx, id)
		require.NoError(t, err)
		c := backend.Commit{Lease: lease, Expect: info.HistoryLen, Run: backend.RunInfo{Status: status}, Release: true}
		require.NoError(t, s.Commit(ctx, c))
	}
	expires := func(d time.Duration) bool { return d > 0 && d <= retention }

	mustCreate(t, s, "before")
	put("before", map[string]string{"a": "A", "b": "B"})
	put("before", map[string]string{"a": "changed", "c": "C"})
	fields, err := srv.Client().HGetAll(ctx, key("before")).Result()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "A", "b": "B", "c": "C"}, fields, "the archive hash")
	assert.Equal(t, time.Duration(-1), ttl("before"), "archive of a running run: want no TTL")
	commit("before", backend.StatusCompleted)
	d := ttl("before")
	assert.True(t, expires(d), "archive of a run that ended has TTL %v; want the retention", d)
	// Retried: kept again, with the run's other keys.
	commit("before", backend.StatusRunning)
	assert.Equal(t, time.Duration(-1), ttl("before"), "archive of a retried run: want no TTL")

	// Written to only after the run ended: the record's expiry.
	mustCreate(t, s, "after")
	commit("after", backend.StatusFailed)
	put("after", map[string]string{"a": "A"})
	d = ttl("after")
	assert.True(t, expires(d), "archive written after its run ended has TTL %v; want the record's", d)
	runTTL := srv.Client().PTTL(ctx, "cairn:{r:after}:run").Val()
	assert.InDelta(t, runTTL.Milliseconds(), d.Milliseconds(), 1000, "archive TTL %v; record TTL %v", d, runTTL)
}

// TestArchiveGoneWithTheRun checks, with a short retention, that a run's
// archive is gone when the run is, and that a run created again under the
// same id does not see the old one's blobs, even had they outlived it.
func TestArchiveGoneWithTheRun(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redis.WithRetention(200*time.Millisecond))
	ctx := t.Context()
	mustCreate(t, s, "r1")
	require.NoError(t, s.PutBlobs(ctx, "r1", map[string][]byte{"k": []byte("old")}))
	lease, err := s.Lease(ctx, "r1", "w1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Run: backend.RunInfo{Status: backend.StatusCompleted}, Release: true}))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		n, err := srv.Client().Exists(ctx, "cairn:{r:r1}:run", "cairn:{r:r1}:archive").Result()
		require.NoError(c, err)
		assert.Zero(c, n, "keys of r1 left")
	}, 10*time.Second, 20*time.Millisecond, "the run and its archive did not expire")
	_, err = s.GetBlobs(ctx, "r1", []string{"k"})
	assert.ErrorIs(t, err, backend.ErrRunNotFound, "GetBlobs of an expired run")

	// An archive that outlived its run (written by hand here) is not the
	// next run's.
	require.NoError(t, srv.Client().HSet(ctx, "cairn:{r:r1}:archive", "k", "stale").Err())
	mustCreate(t, s, "r1")
	blobs, err := s.GetBlobs(ctx, "r1", []string{"k"})
	require.NoError(t, err)
	assert.Empty(t, blobs, "a new run with the id of an expired one")
}

// TestArchiveKeptForGood checks that with a retention of 0 no archive
// expires.
func TestArchiveKeptForGood(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL(), redis.WithRetention(0))
	ctx := t.Context()
	mustCreate(t, s, "r1")
	require.NoError(t, s.PutBlobs(ctx, "r1", map[string][]byte{"k": []byte("v")}))
	lease, err := s.Lease(ctx, "r1", "w1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Run: backend.RunInfo{Status: backend.StatusCompleted}, Release: true}))
	require.NoError(t, s.PutBlobs(ctx, "r1", map[string][]byte{"k2": []byte("v")}))
	assert.Equal(t, time.Duration(-1), srv.Client().PTTL(ctx, "cairn:{r:r1}:archive").Val(), "archive: want no TTL")
}
