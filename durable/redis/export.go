package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

var _ backend.ExportMarker = (*Store)(nil)

// MarkExported implements backend.ExportMarker: one script call per mark,
// all in one pipeline (on a Cluster, one per node), each touching only its
// run's record.
func (s *Store) MarkExported(ctx context.Context, marks []backend.ExportMark) error {
	if len(marks) == 0 {
		return nil
	}
	if _, err := s.pipe(ctx, func(p goredis.Pipeliner) {
		for _, m := range marks {
			s.scripts.mark.EvalSha(ctx, p, []string{s.runKeys(m.RunID).run}, m.Generation, m.Position)
		}
	}); err != nil {
		return fmt.Errorf("mark exported spans of %d runs: %w", len(marks), err)
	}
	return nil
}
