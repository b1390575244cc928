package backend

import "context"

// Archive is an optional capability of a Store: blobs kept with a run, for
// what must outlive the history it came from (the messages a conversation
// drops when it continues as new, see agent.Runtime.Transcript).
//
// A run's blobs live and die with the run: they are kept while it is
// kept, and deleted or expired when its other data is (a store with a
// retention applies it to them as to the run's history). They survive a
// continue-as-new, which replaces the history, not the archive.
//
// Keys name blobs within their run. The caller chooses them so that the
// bytes under a key never need to change: a content address (a hash of
// what the blob holds, so that a blob stored twice is stored once), or a
// name whose content is fixed once written. A store writes each key once
// and keeps the bytes it was first given; it must not interpret them.
type Archive interface {
	// PutBlobs stores blobs of the run runID, each under its key. A key
	// that is stored already keeps its bytes, whatever blobs gives for
	// it; the others are written. A call applies all of its blobs or
	// none, so it is idempotent and safe to retry. It returns an error
	// wrapping ErrRunNotFound for an unknown run, and one for an empty
	// key. Putting no blobs does nothing and returns nil.
	PutBlobs(ctx context.Context, runID string, blobs map[string][]byte) error
	// GetBlobs returns the blobs of the run runID stored under keys;
	// keys not stored are absent from the map. It returns an error
	// wrapping ErrRunNotFound for an unknown run.
	GetBlobs(ctx context.Context, runID string, keys []string) (map[string][]byte, error)
}
