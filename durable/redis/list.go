package redis

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

// listPage is the most index entries ListRuns reads per round trip.
const listPage = 200

// forgetMissingAfter is how old (by creation time) a run must be before
// ListRuns removes its index entries when its record is gone: younger
// records may be missing only because CreateRun writes the indexes just
// before the record.
const forgetMissingAfter = time.Hour

// ListRuns implements backend.Store. It reads the index of the filter's
// status (else of its workflow, else of all runs) newest first, and each
// record it names; the record decides. Runs created at the same time are
// ordered by id, greatest first.
//
// Index entries are hints: an entry whose run has another status is
// skipped, and removed if that status is final (completed, failed or
// canceled runs never change again); an entry whose run no longer exists
// (it expired) is removed.
func (s *Store) ListRuns(ctx context.Context, filter backend.RunFilter) ([]backend.RunInfo, error) {
	index := s.runsIndex()
	switch {
	case filter.Status != "":
		index = s.statusIndex(string(filter.Status))
	case filter.Workflow != "":
		index = s.workflowIndex(filter.Workflow)
	}
	var list []backend.RunInfo
	var stale []string
	var lastScore float64
	page := int64(listPage)
	if filter.Limit > 0 {
		page = min(page, int64(filter.Limit)+16)
	}
	done := false
	for offset := int64(0); !done; offset += page {
		entries, err := s.client.ZRevRangeWithScores(ctx, index, offset, offset+page-1).Result()
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		records := make([]*goredis.MapStringStringCmd, len(entries))
		_, err = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, z := range entries {
				id, _ := z.Member.(string)
				records[i] = p.HGetAll(ctx, s.runKeys(id).run)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		done = int64(len(entries)) < page
		for i, z := range entries {
			// Past the limit, go on only through runs created in the same
			// µs as the last one kept: the sort below orders them.
			if filter.Limit > 0 && len(list) >= filter.Limit && z.Score != lastScore {
				done = true
				break
			}
			id, _ := z.Member.(string)
			fields := records[i].Val()
			if len(fields) == 0 {
				if created := time.UnixMicro(int64(z.Score)); s.clock.Now().Sub(created) > forgetMissingAfter {
					stale = append(stale, id)
				}
				continue
			}
			info, err := decodeRecord(fields)
			if err != nil {
				return nil, fmt.Errorf("list runs: %w", err)
			}
			switch {
			case filter.Status != "" && info.Status != filter.Status:
				// The index of a status the run left; if its status now
				// is final, it never comes back.
				if info.Status.Terminal() {
					stale = append(stale, id)
				}
				continue
			case filter.Status == "" && filter.Workflow != "" && info.Workflow != filter.Workflow:
				// A duplicate CreateRun's entry: workflows never change.
				stale = append(stale, id)
				continue
			case !filter.Match(info):
				continue
			}
			list = append(list, info)
			lastScore = z.Score
		}
	}
	if len(stale) > 0 {
		if err := s.client.ZRem(ctx, index, anys(stale)...).Err(); err != nil {
			s.log.Warn("list runs: remove stale index entries", "index", index, "err", err)
		}
	}
	slices.SortFunc(list, func(a, b backend.RunInfo) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
	if filter.Limit > 0 && len(list) > filter.Limit {
		list = list[:filter.Limit]
	}
	return list, nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
