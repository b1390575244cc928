package inmem_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// A worker's round with a store: poll a task, lease the run, commit the
// events of a step with the lease, and read the history back. Events are
// opaque bytes to a store; the engine encodes them with backend.EncodeEvent.
func Example() {
	ctx := context.Background()
	store := inmem.New()

	run := backend.RunInfo{ID: "order-42", Workflow: "checkout", Status: backend.StatusPending}
	if _, _, err := store.CreateRun(ctx, run, []byte("run started")); err != nil {
		log.Fatal(err)
	}

	task, err := store.Poll(ctx, "worker-1")
	if err != nil {
		log.Fatal(err)
	}
	lease, err := store.Lease(ctx, task.RunID, "worker-1", 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	err = store.Commit(ctx, backend.Commit{
		Lease:   lease,
		Expect:  1, // the history holds the first event
		Events:  [][]byte{[]byte("payment charged"), []byte("run completed")},
		Run:     backend.RunInfo{Status: backend.StatusCompleted},
		Release: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Ack(ctx, task); err != nil {
		log.Fatal(err)
	}

	history, err := store.ReadHistory(ctx, "order-42", 1)
	if err != nil {
		log.Fatal(err)
	}
	for i, event := range history {
		fmt.Printf("%d: %s\n", i+1, event)
	}
	info, err := store.GetRun(ctx, "order-42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Status, info.HistoryLen)

	// A stale writer, here one that still expects one event, is rejected.
	err = store.Commit(ctx, backend.Commit{Lease: lease, Expect: 1})
	fmt.Println(err)
	// Output:
	// 1: run started
	// 2: payment charged
	// 3: run completed
	// completed 3
	// commit order-42: lease lost: write fenced: token 1
}
