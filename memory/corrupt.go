package memory

import "fmt"

// CorruptError is the error of an item that a store holds but cannot
// decode. It matches ErrCorrupt with errors.Is; errors.As gives the item's
// namespace and key, so that a caller can delete it, or page past it in a
// List.
type CorruptError struct {
	Namespace, Key string
	Err            error // what is wrong with it
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("memory: corrupt item %q in namespace %q: %v", e.Key, e.Namespace, e.Err)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns what is wrong with the item.
func (e *CorruptError) Unwrap() error { return e.Err }
