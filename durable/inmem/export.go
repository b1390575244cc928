package inmem

import (
	"context"

	"github.com/cairn-dev/cairn/durable/backend"
)

var _ backend.ExportMarker = (*Store)(nil)

// MarkExported implements backend.ExportMarker.
func (s *Store) MarkExported(ctx context.Context, marks []backend.ExportMark) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range marks {
		r, err := s.lookup(m.RunID)
		if err != nil || r.info.Generation != m.Generation || r.info.SpansExported >= m.Position {
			continue
		}
		r.info.SpansExported = m.Position
	}
	return nil
}
