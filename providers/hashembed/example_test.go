package hashembed_test

import (
	"context"
	"fmt"

	"github.com/cairn-dev/cairn/providers/hashembed"
)

// Texts that share words score higher against each other than texts that
// share fewer (here only "the"). The vectors have length 1, so a dot
// product is their cosine similarity.
func Example() {
	e := hashembed.New(256)
	vs, err := e.Embed(context.Background(), []string{
		"Which coffee does the customer drink?",
		"The customer drinks coffee black, no sugar.",
		"The invoice is due on Friday.",
	})
	if err != nil {
		panic(err)
	}
	dot := func(a, b []float32) (s float32) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	fmt.Printf("related:   %.2f\n", dot(vs[0], vs[1]))
	fmt.Printf("unrelated: %.2f\n", dot(vs[0], vs[2]))
	// Output:
	// related:   0.41
	// unrelated: 0.16
}
