package redis

import (
	"context"
	"fmt"
	"maps"
	"slices"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

var _ backend.Archive = (*Store)(nil)

// PutBlobs implements backend.Archive in one round trip: a script that
// checks the run exists, writes each blob with HSETNX into the run's
// archive hash (under the run's hash tag, so it runs on Redis Cluster),
// and gives the hash the expiry of the run's record. The archive thus
// expires with the run's other keys: with a run that ended, after the
// store's retention (WithRetention), and never while the run is kept;
// a run retried after it ended keeps it again, and the commit that ends
// a run sets its expiry too (see commit.lua).
//
// The blobs of one call are all written or none (a script is atomic);
// each value is one Redis string, so a blob may hold up to 512 MB.
func (s *Store) PutBlobs(ctx context.Context, runID string, blobs map[string][]byte) error {
	if len(blobs) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(blobs))
	for _, key := range slices.Sorted(maps.Keys(blobs)) {
		if key == "" {
			return fmt.Errorf("put blobs of %s: empty key", runID)
		}
		args = append(args, key, blobs[key])
	}
	v, err := s.run(ctx, s.scripts.archive, s.runKeys(runID).archiveKeys(), args...)
	if err != nil {
		return fmt.Errorf("put blobs of %s: %w", runID, err)
	}
	r := newReply(v)
	switch code := r.str(0); {
	case r.err != nil:
		return fmt.Errorf("put blobs of %s: %w", runID, r.err)
	case code == "notfound":
		return fmt.Errorf("put blobs: %w: %s", backend.ErrRunNotFound, runID)
	case code != "ok":
		return fmt.Errorf("put blobs of %s: unexpected script reply %q", runID, code)
	}
	return nil
}

// GetBlobs implements backend.Archive in one round trip: EXISTS on the
// run's record and HMGET on its archive, pipelined.
func (s *Store) GetBlobs(ctx context.Context, runID string, keys []string) (map[string][]byte, error) {
	rk := s.runKeys(runID)
	var exists *goredis.IntCmd
	var values *goredis.SliceCmd
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		exists = p.Exists(ctx, rk.run)
		if len(keys) > 0 {
			values = p.HMGet(ctx, rk.archive, keys...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get blobs of %s: %w", runID, err)
	}
	if exists.Val() == 0 {
		return nil, fmt.Errorf("get blobs: %w: %s", backend.ErrRunNotFound, runID)
	}
	out := make(map[string][]byte, len(keys))
	if values == nil {
		return out, nil
	}
	for i, v := range values.Val() {
		switch v := v.(type) {
		case nil:
		case string:
			out[keys[i]] = []byte(v)
		default:
			return nil, fmt.Errorf("get blobs of %s: unexpected reply %T for %q", runID, v, keys[i])
		}
	}
	return out, nil
}
