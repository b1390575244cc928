package durable_test

import (
	"context"
	"testing"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/memory"
)

var noop = durable.NewActivity("noop", func(ctx context.Context, n int) (int, error) { return n + 1, nil })

// steps runs n no-op activities one after the other.
var steps = durable.NewWorkflow("steps", func(ctx durable.Context, n int) (int, error) {
	for i := range n {
		if _, err := durable.Execute(ctx, noop, i); err != nil {
			return 0, err
		}
	}
	return n, nil
})

// BenchmarkSequentialStep measures one durable step (a no-op activity,
// journaled, with the workflow's next command) on the in-memory store.
// Compare with BenchmarkSequentialStepBaseline, the same call without
// durability.
func BenchmarkSequentialStep(b *testing.B) {
	store := memory.New()
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: quietLogger()})
	w.Register(steps)
	client := durable.NewClient(store, durable.ClientOptions{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := steps.Start(ctx, client, "bench", b.N); err != nil {
		b.Fatal(err)
	}
	if err := w.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if info, _ := client.Describe(ctx, "bench"); info.Status != backend.StatusCompleted {
		b.Fatalf("run %s", info.Status)
	}
}

// BenchmarkSequentialStepBaseline is the loop of BenchmarkSequentialStep
// as plain Go: the activity function called directly.
func BenchmarkSequentialStepBaseline(b *testing.B) {
	fn := func(ctx context.Context, n int) (int, error) { return n + 1, nil }
	ctx := context.Background()
	b.ReportAllocs()
	for i := range b.N {
		if _, err := fn(ctx, i); err != nil {
			b.Fatal(err)
		}
	}
}

// history10k records a run of 4,999 steps: 10,000 events.
func history10k(b *testing.B) [][]byte {
	b.Helper()
	store := memory.New()
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: quietLogger()})
	w.Register(steps)
	client := durable.NewClient(store, durable.ClientOptions{})
	ctx := context.Background()
	if _, err := steps.Start(ctx, client, "long", 4999); err != nil {
		b.Fatal(err)
	}
	if err := w.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	entries, err := store.ReadHistory(ctx, "long", 1)
	if err != nil || len(entries) != 10000 {
		b.Fatalf("history of %d events, %v", len(entries), err)
	}
	return entries
}

// BenchmarkReplay10k decodes and replays a 10,000-event history against
// the workflow's code, as a worker does when it picks up a run.
func BenchmarkReplay10k(b *testing.B) {
	entries := history10k(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		history, err := backend.DecodeHistory(entries, 1, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := durable.ReplayHistory(steps, history); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResume10k measures a worker picking up a run with a 10,000-event
// history that was cut off before its last event: read, decode, replay,
// then finish it (one more commit).
func BenchmarkResume10k(b *testing.B) {
	entries := history10k(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		store := memory.New()
		first := entries[0]
		if _, _, err := store.CreateRun(ctx, backend.RunInfo{ID: "long", Workflow: "steps"}, first); err != nil {
			b.Fatal(err)
		}
		lease, _ := store.Lease(ctx, "long", "dead", 1)
		if err := store.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Events: entries[1 : len(entries)-1],
			Run: backend.RunInfo{Status: backend.StatusRunning}, Release: true}); err != nil {
			b.Fatal(err)
		}
		w := durable.NewWorker(store, durable.WorkerOptions{Logger: quietLogger()})
		w.Register(steps)
		b.StartTimer()
		if err := w.Drain(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if info, _ := store.GetRun(ctx, "long"); info.Status != backend.StatusCompleted || info.HistoryLen != 10000 {
			b.Fatalf("run %s with %d events", info.Status, info.HistoryLen)
		}
		b.StartTimer()
	}
}
