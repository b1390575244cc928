package exact_test

import (
	"fmt"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/internal/exact"
)

// An Index holds a namespace's items and searches them exhaustively, best
// first.
func ExampleIndex_Search() {
	x := exact.NewIndex()
	for _, it := range []memory.Item{
		{Namespace: "user/ana", Key: "email", Text: "prefers email", Vector: []float32{1, 0}},
		{Namespace: "user/ana", Key: "phone", Text: "has a phone", Vector: []float32{0, 1}},
		{Namespace: "user/ana", Key: "both", Text: "either", Vector: []float32{1, 1}},
	} {
		if err := x.Put(it); err != nil {
			panic(err)
		}
	}
	hits, err := x.Search(memory.Query{Namespace: "user/ana", Vector: []float32{1, 0.1}, TopK: 2})
	if err != nil {
		panic(err)
	}
	for _, h := range hits {
		fmt.Printf("%s %.3f\n", h.Item.Key, h.Score)
	}
	// Output:
	// email 0.995
	// both 0.774
}
