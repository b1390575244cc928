package durable_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/internal/benchflow"
)

// BenchmarkSequentialStep measures one durable step (a no-op activity,
// journaled, with the workflow's next command) on the in-memory store.
// Compare with BenchmarkSequentialStepBaseline, the same call without
// durability.
func BenchmarkSequentialStep(b *testing.B) {
	store := inmem.New()
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: quietLogger()})
	w.Register(benchflow.Steps)
	client := durable.NewClient(store, durable.ClientOptions{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	_, err := benchflow.Steps.Start(ctx, client, "bench", b.N)
	require.NoError(b, err)
	require.NoError(b, w.Drain(ctx))
	b.StopTimer()
	info, _ := client.Describe(ctx, "bench")
	require.Equal(b, backend.StatusCompleted, info.Status, "run status")
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
	store := inmem.New()
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: quietLogger()})
	w.Register(benchflow.Steps)
	client := durable.NewClient(store, durable.ClientOptions{})
	ctx := context.Background()
	_, err := benchflow.Steps.Start(ctx, client, "long", 4999)
	require.NoError(b, err)
	require.NoError(b, w.Drain(ctx))
	entries, err := store.ReadHistory(ctx, "long", 1)
	require.NoError(b, err)
	// Lengths compared, not require.Len: that would print 10,000 entries.
	require.Equal(b, 10000, len(entries), "history events")
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
		require.NoError(b, err)
		require.NoError(b, durable.ReplayHistory(benchflow.Steps, history))
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
		store := inmem.New()
		first := entries[0]
		_, _, err := store.CreateRun(ctx, backend.RunInfo{ID: "long", Workflow: "steps"}, first)
		require.NoError(b, err)
		lease, _ := store.Lease(ctx, "long", "dead", 1)
		require.NoError(b, store.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Events: entries[1 : len(entries)-1],
			Run: backend.RunInfo{Status: backend.StatusRunning}, Release: true}))
		w := durable.NewWorker(store, durable.WorkerOptions{Logger: quietLogger()})
		w.Register(benchflow.Steps)
		b.StartTimer()
		require.NoError(b, w.Drain(ctx))
		b.StopTimer()
		info, _ := store.GetRun(ctx, "long")
		require.Equal(b, backend.StatusCompleted, info.Status, "run status")
		require.Equal(b, int64(10000), info.HistoryLen, "history events")
		b.StartTimer()
	}
}
