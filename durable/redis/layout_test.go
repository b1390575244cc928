package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestLayout: a store writes its layout version under a new prefix, finds
// it again under a prefix that lost it, and refuses, with ErrLayout, a
// prefix of another version or one that holds runs of layout 1 (a history
// stream), in every call that touches runs; a history stream or a record
// of layout 1 found later gives ErrLayout too.
func TestLayout(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	ctx := t.Context()
	open := func(prefix string) *redis.Store {
		s := redis.New(rdb, redis.WithPrefix(prefix))
		t.Cleanup(func() { s.Close() })
		return s
	}
	create := func(s *redis.Store, id string) {
		_, _, err := s.CreateRun(ctx, backend.RunInfo{ID: id, Workflow: "wf"}, []byte("first"))
		require.NoError(t, err)
	}

	t.Run("New", func(t *testing.T) {
		create(open("new"), "r1")
		assert.Equal(t, redis.Layout, rdb.Get(ctx, "new:layout").Val())
	})

	t.Run("LostKey", func(t *testing.T) {
		create(open("lost"), "r1")
		require.NoError(t, rdb.Del(ctx, "lost:layout").Err())
		s := open("lost")
		_, err := s.GetRun(ctx, "r1")
		require.NoError(t, err)
		assert.Equal(t, redis.Layout, rdb.Get(ctx, "lost:layout").Val(), "the key is set again")
	})

	t.Run("OtherVersion", func(t *testing.T) {
		require.NoError(t, rdb.Set(ctx, "newer:layout", "3", 0).Err())
		_, err := open("newer").GetRun(ctx, "r1")
		require.ErrorIs(t, err, redis.ErrLayout)
		assert.Contains(t, err.Error(), `holds layout "3"`)
	})

	t.Run("Layout1", func(t *testing.T) {
		// A run of layout 1: its history is a stream, and the prefix has
		// no layout key.
		create(open("old"), "r1")
		require.NoError(t, rdb.Del(ctx, "old:layout", "old:{r:r1}:history").Err())
		require.NoError(t, rdb.XAdd(ctx, &goredis.XAddArgs{Stream: "old:{r:r1}:history", ID: "1-0", Values: []any{"e", "first"}}).Err())
		s := open("old")
		calls := map[string]func() error{
			"GetRun":      func() error { _, err := s.GetRun(ctx, "r1"); return err },
			"ListRuns":    func() error { _, err := s.ListRuns(ctx, backend.RunFilter{}); return err },
			"ReadHistory": func() error { _, err := s.ReadHistory(ctx, "r1", 1); return err },
			"CreateRun": func() error {
				_, _, err := s.CreateRun(ctx, backend.RunInfo{ID: "r2", Workflow: "wf"}, []byte("first"))
				return err
			},
			"Send":      func() error { return s.Send(ctx, "r1", []byte("m")) },
			"ReadInbox": func() error { _, err := s.ReadInbox(ctx, "r1"); return err },
			"WatchRun":  func() error { return s.WatchRun(ctx, "r1", 0) },
			"Poll": func() error {
				done, cancel := context.WithCancel(ctx)
				cancel()
				_, err := s.Poll(done, "w1")
				return err
			},
		}
		for name, call := range calls {
			err := call()
			require.ErrorIs(t, err, redis.ErrLayout, name)
			assert.Contains(t, err.Error(), "layout 1", name)
		}
		t.Log(calls["GetRun"]())
		assert.Zero(t, rdb.Exists(ctx, "old:layout", "old:{r:r2}:run").Val(), "nothing written")
	})

	t.Run("Layout1Run", func(t *testing.T) {
		// A history stream under a prefix of this layout.
		s := open("mixed")
		create(s, "r1")
		require.NoError(t, rdb.Del(ctx, "mixed:{r:r1}:history").Err())
		require.NoError(t, rdb.XAdd(ctx, &goredis.XAddArgs{Stream: "mixed:{r:r1}:history", ID: "1-0", Values: []any{"e", "first"}}).Err())
		_, err := s.ReadHistory(ctx, "r1", 1)
		require.ErrorIs(t, err, redis.ErrLayout)
		lease, err := s.Lease(ctx, "r1", "w1", time.Minute)
		require.NoError(t, err)
		info, err := s.GetRun(ctx, "r1")
		require.NoError(t, err)
		err = s.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Events: [][]byte{[]byte("e2")}, Run: info})
		require.ErrorIs(t, err, redis.ErrLayout)

		// A record of layout 1: its fixed part is one JSON field.
		require.NoError(t, rdb.HSet(ctx, "mixed:{r:r2}:run", "meta", `{"id":"r2"}`, "st", "waiting", "ver", 3).Err())
		_, err = s.GetRun(ctx, "r2")
		require.ErrorIs(t, err, redis.ErrLayout)
	})
}
