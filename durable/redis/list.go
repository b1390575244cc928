package redis

import (
	"cmp"
	"context"
	"errors"
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

// ListRuns implements backend.Store. It reads the partitions' indexes of
// the filter's status (else of its workflow, else of all runs) newest
// first, merged, and the record of each run they name; the record
// decides. Runs created at the same time are ordered by id, greatest
// first. Each page costs a round trip to every partition's index that the
// merge has used up, and one for the records.
//
// Index entries are hints: an entry whose run has another status is
// skipped, and removed if that status is final (completed, failed or
// canceled runs never change again); an entry whose run no longer exists
// (it expired) is removed.
func (s *Store) ListRuns(ctx context.Context, filter backend.RunFilter) ([]backend.RunInfo, error) {
	if err := s.checkLayout(ctx); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	page := int64(listPage)
	if filter.Limit > 0 {
		page = min(page, int64(filter.Limit)+16)
	}
	cursors := make([]*indexCursor, len(s.parts))
	for i, p := range s.parts {
		key := p.keys.runs()
		switch {
		case filter.Status != "":
			key = p.keys.status(string(filter.Status))
		case filter.Workflow != "":
			key = p.keys.workflow(filter.Workflow)
		}
		cursors[i] = &indexCursor{key: key}
	}
	var list []backend.RunInfo
	stale := map[string][]string{} // by index key
	var awaits []int               // the records in list whose run awaits something
	var lastScore float64
	for done := false; !done; {
		entries, err := s.nextEntries(ctx, cursors, page)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		done = len(entries) == 0
		records := make([]*goredis.SliceCmd, len(entries))
		names := recordFields()
		_, err = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, e := range entries {
				records[i] = readRecord(ctx, p, s.runKeys(e.id).run, names)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		for i, e := range entries {
			// Past the limit, go on only through runs created in the same
			// µs as the last one kept: the sort below orders them.
			if filter.Limit > 0 && len(list) >= filter.Limit && e.score != lastScore {
				done = true
				break
			}
			fields := recordOf(records[i], names)
			if len(fields) == 0 {
				if created := time.UnixMicro(int64(e.score)); s.clock.Now().Sub(created) > forgetMissingAfter {
					stale[e.key] = append(stale[e.key], e.id)
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
					stale[e.key] = append(stale[e.key], e.id)
				}
				continue
			case filter.Status == "" && filter.Workflow != "" && info.Workflow != filter.Workflow:
				// A duplicate CreateRun's entry: workflows never change.
				stale[e.key] = append(stale[e.key], e.id)
				continue
			case !filter.Match(info):
				continue
			}
			if fields["aw"] != "" {
				awaits = append(awaits, len(list)) // read after the loop
			}
			list = append(list, info)
			lastScore = e.score
		}
	}
	if err := s.readAwaiting(ctx, list, awaits); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	if len(stale) > 0 {
		_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for key, ids := range stale {
				p.ZRem(ctx, key, anys(ids)...)
			}
			return nil
		})
		if err != nil {
			s.log.Warn("list runs: remove stale index entries", "err", err)
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

// readAwaiting reads, in one round trip, what the runs list[i] await, for
// each i of marked, into their Awaiting.
func (s *Store) readAwaiting(ctx context.Context, list []backend.RunInfo, marked []int) error {
	if len(marked) == 0 {
		return nil
	}
	values := make([]*goredis.StringCmd, len(marked))
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for j, i := range marked {
			values[j] = p.Get(ctx, s.runKeys(list[i].ID).awaiting)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return err
	}
	for j, i := range marked {
		if v := values[j].Val(); v != "" {
			list[i].Awaiting = []byte(v)
		}
	}
	return nil
}

// indexCursor reads one partition's index newest first, a page at a time.
type indexCursor struct {
	key    string
	buf    []goredis.Z // read, not yet merged
	offset int64       // of the next page
	end    bool        // the index has nothing after buf
}

// indexEntry is an index entry that the merge of the partitions' indexes
// gave out.
type indexEntry struct {
	key, id string
	score   float64
}

// nextEntries returns up to n entries of the cursors' indexes, merged
// newest first (greatest score, then greatest id), reading a page of each
// index whose buffer is empty first, all in one round trip. It returns no
// entries once every index is read to its end.
func (s *Store) nextEntries(ctx context.Context, cursors []*indexCursor, n int64) ([]indexEntry, error) {
	var out []indexEntry
	for int64(len(out)) < n {
		var refill []*indexCursor
		for _, c := range cursors {
			if len(c.buf) == 0 && !c.end {
				refill = append(refill, c)
			}
		}
		if len(refill) > 0 {
			if len(out) > 0 {
				// Give out what is merged; the next call reads more.
				return out, nil
			}
			pages := make([]*goredis.ZSliceCmd, len(refill))
			_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for i, c := range refill {
					pages[i] = p.ZRevRangeWithScores(ctx, c.key, c.offset, c.offset+n-1)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			for i, c := range refill {
				c.buf = pages[i].Val()
				c.offset += int64(len(c.buf))
				c.end = int64(len(c.buf)) < n
			}
		}
		var best *indexCursor
		for _, c := range cursors {
			if len(c.buf) > 0 && (best == nil || newer(c.buf[0], best.buf[0])) {
				best = c
			}
		}
		if best == nil {
			return out, nil
		}
		z := best.buf[0]
		best.buf = best.buf[1:]
		id, _ := z.Member.(string)
		out = append(out, indexEntry{key: best.key, id: id, score: z.Score})
	}
	return out, nil
}

// newer orders index entries newest first: greater score, then greater id.
func newer(a, b goredis.Z) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	ida, _ := a.Member.(string)
	idb, _ := b.Member.(string)
	return ida > idb
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
