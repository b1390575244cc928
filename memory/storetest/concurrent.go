package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cairn-dev/cairn/memory"
)

// testConcurrent puts, searches and lists from many goroutines at once:
// run it with -race. Writers share half their keys, so the last write of
// a shared key wins, whole.
func testConcurrent(t *testing.T, s memory.Store) {
	const writers, each = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, 4*writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("own-%d-%d", w, i)
				if i%2 == 0 {
					key = fmt.Sprintf("shared-%d", i)
				}
				text := fmt.Sprintf("writer %d", w)
				errs <- s.Put(t.Context(), memory.Item{Namespace: "ns", Key: key, Text: text,
					Vector: []float32{float32(w), float32(i), 1}, Metadata: map[string]string{"writer": text}})
			}
		})
		wg.Go(func() {
			for range each / 4 {
				_, err := s.Search(t.Context(), memory.Query{Namespace: "ns", Vector: []float32{1, float32(w), 1}, TopK: 5})
				errs <- err
				_, err = s.List(t.Context(), "ns", "", 20)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	items := listAll(t, s, "ns")
	assert.Len(t, items, writers*each/2+each/2, "items: each writer's own and the shared")
	for _, it := range items {
		w := 0
		_, err := fmt.Sscanf(it.Text, "writer %d", &w)
		if assert.NoError(t, err, "item %q", it.Key) {
			assert.Equal(t, it.Text, it.Metadata["writer"], "item %q: text and metadata of different writes", it.Key)
			assert.Equal(t, float32(w), it.Vector[0], "item %q: text and vector of different writes", it.Key)
		}
	}
	hits := search(t, s, memory.Query{Namespace: "ns", Vector: []float32{0, 0, 1}, TopK: memory.MaxTopK, MinScore: -1})
	assert.Len(t, hits, len(items), "hits of all items")
}
