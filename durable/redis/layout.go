package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// Layout is the version of the key layout (keys.go) that this code reads
// and writes. A store records it in the key "<prefix>:layout" when it
// first finds a prefix without one, and refuses a prefix that holds
// another: see ErrLayout.
//
// Layout 1 (cairn before layout versions) kept a run's history in a
// stream, whose first entry alone takes 4.7 KB of Redis memory, a stream
// of changes that every commit wrote to, and the record's fixed part and
// state as two JSON fields, which made it a hash table. Layout 2 keeps
// the history in a list, has streams of changes only while a run is
// watched (see watch.go), and gives each part of the record a short field
// of its own (see record.go): a run waiting on a timer takes 1.2 KB
// instead of 10.9.
const Layout = "2"

// ErrLayout means the keys under the store's prefix were written in a
// key layout this code does not read (by an older or newer cairn). It is
// not retryable: start this version on a new prefix (WithPrefix) while
// the other version's workers finish the runs of the old one, or delete
// the old prefix's keys once none of its runs is needed.
var ErrLayout = errors.New("redis store: keys of another layout")

// layoutKey is the key that holds the prefix's layout version.
func (s *Store) layoutKey() string { return s.prefix + ":layout" }

// layoutSample is how many runs of each partition checkLayout looks at
// when the prefix has no layout key.
const layoutSample = 5

// checkLayout returns an error wrapping ErrLayout if the prefix holds
// keys of another layout, and nil otherwise. It asks Redis once per
// store, in the first call that touches runs: one round trip when the
// prefix has its layout key.
//
// A prefix without the key is either new, or was written by layout 1,
// or lost the key (a Cluster node that lost its data). So the layout
// stands when the prefix's runs say so: the oldest and newest few of each
// partition's runs that have not ended, and the newest few of its runs,
// must not be runs of layout 1 (their history is a stream). Then the key
// is set.
//
// The check is a guard, not a dependency: if Redis cannot answer it (the
// Cluster node of the key is down), the call goes on, and the check is
// tried again after retryAfter. Each run's keys still say what they are:
// a history of layout 1 gives an error wrapping ErrLayout wherever it is
// read or written.
func (s *Store) checkLayout(ctx context.Context) error {
	if s.layoutChecked.Load() {
		return nil
	}
	s.layoutMu.Lock()
	defer s.layoutMu.Unlock()
	if s.layoutChecked.Load() || s.clock.Now().Before(s.layoutRetry) {
		return nil
	}
	err := s.readLayout(ctx)
	switch {
	case err == nil:
		s.layoutChecked.Store(true)
	case errors.Is(err, ErrLayout):
		return err
	case ctx.Err() == nil:
		s.log.Warn("check the key layout; going on without", "prefix", s.prefix, "err", err)
		s.layoutRetry = s.clock.Now().Add(retryAfter)
	}
	return nil
}

// readLayout reads the prefix's layout, and sets it if the prefix has
// none and holds no runs of layout 1.
func (s *Store) readLayout(ctx context.Context) error {
	for {
		v, err := s.client.Get(ctx, s.layoutKey()).Result()
		switch {
		case err == nil && v == Layout:
			return nil
		case err == nil:
			return fmt.Errorf("%w: prefix %q holds layout %q; this code reads layout %s", ErrLayout, s.prefix, v, Layout)
		case !errors.Is(err, goredis.Nil):
			return fmt.Errorf("read layout: %w", err)
		}
		if err := s.sampleLayout(ctx); err != nil {
			return err
		}
		set, err := s.client.SetNX(ctx, s.layoutKey(), Layout, 0).Result()
		if err != nil {
			return fmt.Errorf("write layout: %w", err)
		}
		if set {
			return nil
		}
		// Another store set it in between: read what it set.
	}
}

// sampleLayout looks at the histories of a few of each partition's runs
// and returns an error wrapping ErrLayout if one is of layout 1.
func (s *Store) sampleLayout(ctx context.Context) error {
	var ranges []*goredis.StringSliceCmd
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, part := range s.parts {
			ranges = append(ranges,
				p.ZRange(ctx, part.keys.active(), 0, layoutSample-1),
				p.ZRevRange(ctx, part.keys.active(), 0, layoutSample-1),
				p.ZRevRange(ctx, part.keys.runs(), 0, layoutSample-1))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check layout: %w", err)
	}
	ids := map[string]bool{}
	for _, r := range ranges {
		for _, id := range r.Val() {
			ids[id] = true
		}
	}
	if len(ids) == 0 {
		return nil
	}
	types := make(map[string]*goredis.StatusCmd, len(ids))
	_, err = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for id := range ids {
			types[id] = p.Type(ctx, s.runKeys(id).history)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check layout: %w", err)
	}
	for id, cmd := range types {
		if cmd.Val() == "stream" {
			return fmt.Errorf("%w: prefix %q holds runs of layout 1 (run %s, for one), written by an older cairn; "+
				"this code reads layout %s. Let that version's workers finish them and start this one on another prefix, "+
				"or delete the prefix's keys once none of its runs is needed (or, if they are all of layout %s, SET %s %s)",
				ErrLayout, s.prefix, id, Layout, Layout, s.layoutKey(), Layout)
		}
	}
	return nil
}

// historyErr turns the error Redis gives for a history key that is not a
// list (a stream of layout 1) into one that says so.
func historyErr(err error) error {
	if err != nil && goredis.HasErrorPrefix(err, "WRONGTYPE") {
		return fmt.Errorf("%w: the history is not a list (a stream of layout 1, written by an older cairn?): %v", ErrLayout, err)
	}
	return err
}
