package redis

import (
	"context"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

// WatchRun implements backend.Watcher: it returns nil as soon as the run's
// Version differs from version, and an error wrapping
// backend.ErrRunNotFound for an unknown run.
//
// It blocks in Redis, not in a polling loop: every commit adds an entry to
// the run's changes stream, and WatchRun reads that stream with XREAD BLOCK
// from its last entry, for up to blockFor at a time, so a waiting WatchRun
// holds one connection of the client's pool. The blocking read runs in its
// own goroutine, so that WatchRun returns as soon as ctx is done; the read
// ends on its own within blockFor.
func (s *Store) WatchRun(ctx context.Context, runID string, version int64) error {
	if err := s.checkLayout(ctx); err != nil {
		return fmt.Errorf("watch run %s: %w", runID, err)
	}
	rk := s.runKeys(runID)
	for {
		// The last change first, then the version: a commit in between
		// shows in the version, one after it in the read.
		var last *goredis.XMessageSliceCmd
		var ver *goredis.StringCmd
		_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			last = p.XRevRangeN(ctx, rk.changes, "+", "-", 1)
			ver = p.HGet(ctx, rk.run, "ver")
			return nil
		})
		if ver != nil && ver.Err() == goredis.Nil {
			return fmt.Errorf("watch run: %w: %s", backend.ErrRunNotFound, runID)
		}
		if err != nil {
			return fmt.Errorf("watch run %s: %w", runID, err)
		}
		v, err := strconv.ParseInt(ver.Val(), 10, 64)
		if err != nil {
			return fmt.Errorf("watch run %s: version %q: %w", runID, ver.Val(), err)
		}
		if v != version {
			return nil
		}
		from := "0-0"
		if msgs := last.Val(); len(msgs) > 0 {
			from = msgs[0].ID
		}
		read := make(chan error, 1)
		go func() {
			err := s.client.XRead(context.WithoutCancel(ctx), &goredis.XReadArgs{
				Streams: []string{rk.changes, from}, Count: 1, Block: blockFor,
			}).Err()
			if err == goredis.Nil {
				err = nil
			}
			read <- err
		}()
		select {
		case err := <-read:
			if err != nil {
				return fmt.Errorf("watch run %s: %w", runID, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("watch run %s: %w", runID, ctx.Err())
		}
	}
}
