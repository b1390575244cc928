package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

var _ backend.RunCounter = (*Store)(nil)

// countBatch is the most records CountRuns reads in one round trip.
const countBatch = 1000

// CountRuns implements backend.RunCounter. It reads the ids in the
// partitions' indexes of all runs (one round trip), then the status and
// workflow fields of their records (a round trip per countBatch runs),
// skipping ids whose record is gone (expired). It decodes no record, so it
// costs a fraction of ListRuns over the same runs.
func (s *Store) CountRuns(ctx context.Context) (backend.RunCounts, error) {
	var counts backend.RunCounts
	if err := s.checkLayout(ctx); err != nil {
		return counts, fmt.Errorf("count runs: %w", err)
	}
	pages := make([]*goredis.StringSliceCmd, len(s.parts))
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, part := range s.parts {
			pages[i] = p.ZRange(ctx, part.keys.runs(), 0, -1)
		}
		return nil
	})
	if err != nil {
		return counts, fmt.Errorf("count runs: %w", err)
	}
	seen := map[string]bool{} // a run may be indexed twice (a repeated CreateRun)
	var ids []string
	for _, page := range pages {
		for _, id := range page.Val() {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	for len(ids) > 0 {
		batch := ids[:min(countBatch, len(ids))]
		ids = ids[len(batch):]
		fields := make([]*goredis.SliceCmd, len(batch))
		_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, id := range batch {
				fields[i] = p.HMGet(ctx, s.runKeys(id).run, "st", "wf")
			}
			return nil
		})
		if err != nil {
			return counts, fmt.Errorf("count runs: %w", err)
		}
		for _, f := range fields {
			v := f.Val()
			st, _ := v[0].(string)
			wf, _ := v[1].(string)
			if st == "" {
				continue // expired since it was indexed
			}
			counts.Add(backend.Status(st), wf)
		}
	}
	return counts, nil
}
