package inmem

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/cairn-dev/cairn/durable/backend"
)

var _ backend.Archive = (*Store)(nil)

// PutBlobs implements backend.Archive. A run's blobs are kept with its
// record: the in-memory store drops no run, so it drops no blob.
func (s *Store) PutBlobs(ctx context.Context, runID string, blobs map[string][]byte) error {
	if len(blobs) == 0 {
		return nil
	}
	if _, ok := blobs[""]; ok {
		return errors.New("put blobs: empty key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(runID)
	if err != nil {
		return fmt.Errorf("put blobs: %w", err)
	}
	if r.blobs == nil {
		r.blobs = make(map[string][]byte, len(blobs))
	}
	for key, data := range blobs {
		if _, ok := r.blobs[key]; !ok {
			r.blobs[key] = bytes.Clone(data)
		}
	}
	return nil
}

// GetBlobs implements backend.Archive.
func (s *Store) GetBlobs(ctx context.Context, runID string, keys []string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(runID)
	if err != nil {
		return nil, fmt.Errorf("get blobs: %w", err)
	}
	out := make(map[string][]byte, len(keys))
	for _, key := range keys {
		if data, ok := r.blobs[key]; ok {
			out[key] = bytes.Clone(data)
		}
	}
	return out, nil
}
