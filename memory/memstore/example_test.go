package memstore_test

import (
	"context"
	"fmt"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/memstore"
)

// Items with vectors (here written by hand; an embedder makes them from
// the texts) are searched by closeness to a query's vector, within a
// namespace, filtered by metadata.
func Example() {
	ctx := context.Background()
	store := memstore.New()
	for _, it := range []memory.Item{
		{Namespace: "user/42", Key: "coffee", Text: "Drinks coffee black.", Vector: []float32{0.9, 0.1, 0}, Metadata: map[string]string{"kind": "preference"}},
		{Namespace: "user/42", Key: "tea", Text: "Likes green tea in the afternoon.", Vector: []float32{0.7, 0.3, 0.1}, Metadata: map[string]string{"kind": "preference"}},
		{Namespace: "user/42", Key: "city", Text: "Lives in Lyon.", Vector: []float32{0, 0.2, 0.9}, Metadata: map[string]string{"kind": "fact"}},
		{Namespace: "user/7", Key: "coffee", Text: "Never drinks coffee.", Vector: []float32{0.9, 0.1, 0}},
	} {
		if err := store.Put(ctx, it); err != nil {
			panic(err)
		}
	}

	hits, err := store.Search(ctx, memory.Query{Namespace: "user/42", Vector: []float32{1, 0, 0}, TopK: 2})
	if err != nil {
		panic(err)
	}
	for _, h := range hits {
		fmt.Printf("%.3f %s\n", h.Score, h.Item.Text)
	}
	hits, _ = store.Search(ctx, memory.Query{Namespace: "user/42", Vector: []float32{1, 0, 0}, Filter: map[string]string{"kind": "fact"}})
	fmt.Println("facts:", len(hits), hits[0].Item.Text)

	_, err = store.Search(ctx, memory.Query{Namespace: "user/42", Vector: []float32{1, 0}})
	fmt.Println(err)
	// Output:
	// 0.994 Drinks coffee black.
	// 0.911 Likes green tea in the afternoon.
	// facts: 1 Lives in Lyon.
	// memory: vector dimension mismatch: the namespace's vectors have 3 dimensions, this one 2
}
