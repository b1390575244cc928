package memory_test

import (
	"context"
	"fmt"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/memstore"
	"github.com/cairn-dev/cairn/providers/hashembed"
)

// Long-term memory remembers texts and recalls them by meaning. Here the
// store is in memory and the embedder hashes words, so it needs no setup;
// memory/redis and providers/openai's Embedder are the real ones.
func ExampleMemory() {
	ctx := context.Background()
	m := &memory.Memory{Store: memstore.New(), Embedder: hashembed.New(0)}
	for key, text := range map[string]string{
		"coffee": "The customer drinks coffee black, no sugar.",
		"city":   "The customer lives in Lyon, near the station.",
		"pet":    "Her cat is called Miso.",
	} {
		if _, err := m.Remember(ctx, memory.Item{Namespace: "user/42", Key: key, Text: text,
			Metadata: map[string]string{"source": "chat"}}); err != nil {
			panic(err)
		}
	}

	hits, err := m.Recall(ctx, "How does the customer take their coffee?", memory.Query{Namespace: "user/42", TopK: 2})
	if err != nil {
		panic(err)
	}
	for _, h := range hits {
		fmt.Printf("%s: %s\n", h.Item.Key, h.Item.Text)
	}
	// Output:
	// coffee: The customer drinks coffee black, no sugar.
	// city: The customer lives in Lyon, near the station.
}
