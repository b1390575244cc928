package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

var _ backend.AwaitingLister = (*Store)(nil)

// ListAwaiting implements backend.AwaitingLister in two round trips: the
// partitions' awaiting indexes, whole, then of each run they name the
// fields of its record the list needs (ListRuns reads twenty; with
// thousands of runs, fields read are much of the cost) and its awaiting
// key, read after the record (so it may reflect a later commit, never an
// earlier one).
//
// Index entries are hints, as ListRuns's are: each commit that saves an
// Awaiting scores the run's entry with its time; an entry whose record
// has none (or is gone) is removed, unless a commit scored it again since
// it was read (lua/forget.lua), so a commit racing with the removal
// keeps its entry.
func (s *Store) ListAwaiting(ctx context.Context) ([]backend.RunInfo, error) {
	if err := s.checkLayout(ctx); err != nil {
		return nil, fmt.Errorf("list awaiting: %w", err)
	}
	indexes := make([]*goredis.ZSliceCmd, len(s.parts))
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, part := range s.parts {
			indexes[i] = p.ZRangeWithScores(ctx, part.keys.awaiting(), 0, -1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list awaiting: %w", err)
	}
	var entries []indexEntry
	for i, part := range s.parts {
		for _, z := range indexes[i].Val() {
			id, _ := z.Member.(string)
			entries = append(entries, indexEntry{key: part.keys.awaiting(), id: id, score: z.Score})
		}
	}
	names := []string{"wf", "st", "ca", "inb", "meta"}
	records := make([]*goredis.SliceCmd, len(entries))
	values := make([]*goredis.StringCmd, len(entries))
	_, err = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, e := range entries {
			rk := s.runKeys(e.id)
			records[i] = readRecord(ctx, p, rk.run, names)
			values[i] = p.Get(ctx, rk.awaiting)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("list awaiting: %w", err)
	}
	var list []backend.RunInfo
	settled := map[string][]any{} // entries to remove, by index: member, score as read
	for i, e := range entries {
		f := recordOf(records[i], names)
		awaiting := values[i].Val()
		if len(f) == 0 || awaiting == "" {
			settled[e.key] = append(settled[e.key], e.id, e.score)
			continue
		}
		if _, old := f["meta"]; old {
			return nil, fmt.Errorf("list awaiting: run %s: %w: the record of a run of layout 1, written by an older cairn", e.id, ErrLayout)
		}
		d := &fieldReader{f: f}
		info := backend.RunInfo{ID: e.id, Workflow: f["wf"], Status: backend.Status(f["st"]), CreatedAt: d.time("ca", false),
			Awaiting: []byte(awaiting), Inbox: int(d.int("inb", true))}
		if d.err != nil {
			return nil, fmt.Errorf("list awaiting: decode record %s: %w", e.id, d.err)
		}
		list = append(list, info)
	}
	if len(settled) > 0 {
		_, err := s.pipe(ctx, func(p goredis.Pipeliner) {
			for key, pairs := range settled {
				s.scripts.forget.EvalSha(ctx, p, []string{key}, pairs...)
			}
		})
		if err != nil {
			s.log.Warn("list awaiting: remove stale index entries", "err", err)
		}
	}
	// Sorted by position: a record is too big to move about cheaply.
	order := make([]int, len(list))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		return cmp.Or(list[i].CreatedAt.Compare(list[j].CreatedAt), strings.Compare(list[i].ID, list[j].ID))
	})
	sorted := make([]backend.RunInfo, len(list))
	for k, i := range order {
		sorted[k] = list[i]
	}
	return sorted, nil
}
