package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

// watchKeep is how long a run's changes or commits stream is kept after
// the last watch looked at it: longer than a blocking read (blockFor), so
// that it outlives the reads of the watchers that keep it.
const watchKeep = 3 * blockFor

// WatchRun implements backend.Watcher: it returns nil as soon as a
// commit after version moved the run on (its record's "wv", the version
// of the last such commit, is beyond version), or the record's version is
// below version; and an error wrapping backend.ErrRunNotFound for an
// unknown run. It waits on the run's changes stream (see watch).
func (s *Store) WatchRun(ctx context.Context, runID string, version int64) error {
	rk := s.runKeys(runID)
	if err := s.watch(ctx, rk.changes, rk, version, "wv"); err != nil {
		return fmt.Errorf("watch run %s: %w", runID, err)
	}
	return nil
}

// WatchCommits implements backend.Watcher: it returns nil as soon as the
// run's version differs from version, and an error wrapping
// backend.ErrRunNotFound for an unknown run. It waits on the run's
// commits stream (see watch).
func (s *Store) WatchCommits(ctx context.Context, runID string, version int64) error {
	rk := s.runKeys(runID)
	if err := s.watch(ctx, rk.commits, rk, version, "ver"); err != nil {
		return fmt.Errorf("watch commits of %s: %w", runID, err)
	}
	return nil
}

// watch waits until the record's field mark ("wv" or "ver") is beyond
// version, or its "ver" below it.
//
// It blocks in Redis, not in a polling loop. The watch script checks the
// record and, if it is not there yet, makes sure the run has the stream,
// which lives for watchKeep after the last look; watch then reads the
// stream with XREAD BLOCK from its last entry, for up to blockFor at a
// time (or until ctx's deadline, if that comes first), and looks again.
// A commit adds an entry to the streams that exist and that it concerns
// (any commit to commits, one that moves the run on to changes), which
// ends the read. So a run nobody watches has neither stream, and one that
// is watched has one (about 4.7 KB: a stream's first node is
// preallocated) until watchKeep after the last watch ends.
//
// A waiting watch holds one connection of the client's pool. The blocking
// read runs in its own goroutine, so that watch returns as soon as ctx is
// done; the read ends on its own within blockFor.
func (s *Store) watch(ctx context.Context, stream string, rk runKeys, version int64, mark string) error {
	if err := s.checkLayout(ctx); err != nil {
		return err
	}
	keys := []string{rk.run, stream}
	for {
		v, err := s.run(ctx, s.scripts.watch, keys, version, watchKeep.Milliseconds(), mark)
		if err != nil {
			return err
		}
		r := newReply(v)
		switch code := r.str(0); {
		case r.err != nil:
			return r.err
		case code == "notfound":
			return backend.ErrRunNotFound
		case code == "moved":
			return nil
		case code != "wait":
			return fmt.Errorf("unexpected script reply %q", code)
		}
		from := r.str(1)
		if r.err != nil {
			return r.err
		}
		block := blockFor
		if deadline, ok := ctx.Deadline(); ok {
			block = min(block, max(time.Until(deadline), time.Millisecond))
		}
		read := make(chan error, 1)
		go func() {
			err := s.client.XRead(context.WithoutCancel(ctx), &goredis.XReadArgs{
				Streams: []string{stream, from}, Count: 1, Block: block,
			}).Err()
			if err == goredis.Nil {
				err = nil
			}
			read <- err
		}()
		select {
		case err := <-read:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
