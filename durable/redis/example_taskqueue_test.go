package redis_test

import (
	"context"
	"log"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/redis"
)

// An activity that needs a GPU goes to the task queue "gpu", which only
// the processes on GPU machines serve; the runs are owned by the other
// processes. Both sides open a store on the same Redis. (This example
// needs a Redis server, so it is compiled but not run.)
func Example_taskQueue() {
	ctx := context.Background()
	const url = "redis://localhost:6379/0"

	// On a GPU machine: serve the queue, own no runs.
	gpuStore, err := redis.Open(url)
	if err != nil {
		log.Fatal(err)
	}
	defer gpuStore.Close()
	render := durable.NewActivity("render", func(ctx context.Context, scene string) (string, error) {
		return "frame of " + scene, nil
	}, durable.ActivityOptions{TaskQueue: "gpu"})
	gpu := durable.NewWorker(gpuStore, durable.WorkerOptions{TaskQueues: []string{"gpu"}})
	gpu.RegisterActivities(render)
	go gpu.Run(ctx)

	// Elsewhere: own the runs; render's attempts go to the queue.
	store, err := redis.Open(url)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	film := durable.NewWorkflow("film", func(ctx durable.Context, scene string) (string, error) {
		return durable.Execute(ctx, render, scene)
	})
	worker := durable.NewWorker(store, durable.WorkerOptions{})
	worker.Register(film)
	go worker.Run(ctx)

	run, err := film.Start(ctx, durable.NewClient(store, durable.ClientOptions{}), "film-1", "sunrise")
	if err != nil {
		log.Fatal(err)
	}
	frame, err := run.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Println(frame)
}
