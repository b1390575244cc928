package redis_test

import (
	"context"
	"log"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/redis"
)

// A service opens one store per process and shares it between its worker
// and its clients; any number of processes may do so on the same Redis.
// (This example needs a Redis server, so it is compiled but not run.)
func Example() {
	ctx := context.Background()
	// rediss:// for TLS; the user and password of an ACL user.
	// snippet:redis
	store, err := redis.Open("redis://cairn-worker:s3cret@localhost:6379/0",
		redis.WithRetention(30*24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	// end snippet:redis

	greet := durable.NewActivity("greet", func(ctx context.Context, name string) (string, error) {
		return "hello, " + name, nil
	})
	hello := durable.NewWorkflow("hello", func(ctx durable.Context, name string) (string, error) {
		return durable.Execute(ctx, greet, name)
	})

	worker := durable.NewWorker(store, durable.WorkerOptions{})
	worker.Register(hello)
	go worker.Run(ctx)

	client := durable.NewClient(store, durable.ClientOptions{})
	run, err := hello.Start(ctx, client, "hello-ann", "ann")
	if err != nil {
		log.Fatal(err)
	}
	greeting, err := run.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Println(greeting)
}
