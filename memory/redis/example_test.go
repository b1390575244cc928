package redis_test

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/redis"
	"github.com/cairn-dev/cairn/providers/hashembed"
)

// Long-term memory in Redis: a plain Redis 7 will do, or a Redis Cluster
// through a *goredis.ClusterClient. It needs a server, so it has no
// output to check here; TestConformance runs the same calls against one.
func Example() {
	ctx := context.Background()
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	defer client.Close()
	m := &memory.Memory{
		Store:    redis.New(client, redis.Options{Prefix: "myapp:mem"}),
		Embedder: hashembed.New(0), // or openai.NewEmbedder("text-embedding-3-small")
	}
	if _, err := m.Remember(ctx, memory.Item{Namespace: "user/42", Key: "coffee", Text: "Drinks coffee black."}); err != nil {
		panic(err)
	}
	hits, err := m.Recall(ctx, "How does the user take coffee?", memory.Query{Namespace: "user/42", TopK: 3})
	if err != nil {
		panic(err)
	}
	for _, h := range hits {
		fmt.Printf("%.2f %s\n", h.Score, h.Item.Text)
	}
}
