package memory

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// Defaults of a Query's TopK and of List's limit, when they are 0.
const (
	DefaultTopK      = 10
	DefaultListLimit = 100
)

// MaxKeyBytes is the longest Item.Key.
const MaxKeyBytes = 256

// ValidKey checks an item's key: 1 to MaxKeyBytes bytes of UTF-8. It
// wraps ErrInvalidItem.
func ValidKey(key string) error {
	if len(key) == 0 || len(key) > MaxKeyBytes || !utf8.ValidString(key) {
		return fmt.Errorf("%w: key %.40q: want 1 to %d bytes of UTF-8", ErrInvalidItem, key, MaxKeyBytes)
	}
	return nil
}

// ValidVector checks a vector: 1 to MaxDimensions numbers, each finite.
// It wraps ErrInvalidItem.
func ValidVector(v []float32) error {
	if err := checkVector(v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidItem, err)
	}
	return nil
}

// checkVector says what is wrong with a vector, wrapping no sentinel.
func checkVector(v []float32) error {
	if len(v) == 0 || len(v) > MaxDimensions {
		return fmt.Errorf("vector of %d dimensions: want 1 to %d", len(v), MaxDimensions)
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("vector[%d] is %v: want a finite number", i, x)
		}
	}
	return nil
}

// ValidItem checks what every Store checks of an item before it stores
// it, so that all of them refuse the same items: the namespace
// (ValidNamespace), the key (ValidKey), a text of 1 to MaxTextBytes bytes
// of UTF-8, at most MaxMetadata metadata entries whose keys and values
// are UTF-8 of at most MaxMetadataBytes each, and the vector
// (ValidVector). Its errors wrap ErrInvalidNamespace or ErrInvalidItem.
//
// It cannot check the vector's dimension against the namespace's: the
// store does that, atomically with the write.
//
// Texts, keys and metadata must be UTF-8 because an item crosses the
// durable boundary as JSON, which would change other bytes.
func ValidItem(item Item) error {
	if err := validFields(item); err != nil {
		return err
	}
	if err := checkVector(item.Vector); err != nil {
		return fmt.Errorf("%w: item %q: %w", ErrInvalidItem, item.Key, err)
	}
	return nil
}

// validFields checks all of an item but its vector.
func validFields(item Item) error {
	if err := ValidNamespace(item.Namespace); err != nil {
		return err
	}
	if err := ValidKey(item.Key); err != nil {
		return err
	}
	if len(item.Text) == 0 || len(item.Text) > MaxTextBytes || !utf8.ValidString(item.Text) {
		return fmt.Errorf("%w: item %q: text of %d bytes: want 1 to %d bytes of UTF-8", ErrInvalidItem, item.Key, len(item.Text), MaxTextBytes)
	}
	if err := validMetadata(item.Metadata); err != nil {
		return fmt.Errorf("%w: item %q: metadata %w", ErrInvalidItem, item.Key, err)
	}
	return nil
}

// validMetadata checks metadata, or a filter, against the limits.
func validMetadata(m map[string]string) error {
	if len(m) > MaxMetadata {
		return fmt.Errorf("has %d entries: want at most %d", len(m), MaxMetadata)
	}
	for k, v := range m {
		if len(k) > MaxMetadataBytes || len(v) > MaxMetadataBytes {
			return fmt.Errorf("entry %.40q has %d and %d bytes: want at most %d each", k, len(k), len(v), MaxMetadataBytes)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("entry %.40q is not UTF-8", k)
		}
	}
	return nil
}

// ValidQuery checks a query: the namespace (ValidNamespace), the vector
// (as ValidVector does), a TopK of 0 to MaxTopK, a filter within the
// metadata limits and a MinScore that is a number. Its errors wrap
// ErrInvalidNamespace or ErrInvalidQuery.
func ValidQuery(q Query) error {
	if err := validQueryFields(q); err != nil {
		return err
	}
	if err := checkVector(q.Vector); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidQuery, err)
	}
	return nil
}

// validQueryFields checks all of a query but its vector.
func validQueryFields(q Query) error {
	if err := ValidNamespace(q.Namespace); err != nil {
		return err
	}
	if q.TopK < 0 || q.TopK > MaxTopK {
		return fmt.Errorf("%w: TopK %d: want 0 (for %d) to %d", ErrInvalidQuery, q.TopK, DefaultTopK, MaxTopK)
	}
	if math.IsNaN(q.MinScore) {
		return fmt.Errorf("%w: MinScore is NaN", ErrInvalidQuery)
	}
	if err := validMetadata(q.Filter); err != nil {
		return fmt.Errorf("%w: filter %w", ErrInvalidQuery, err)
	}
	return nil
}
