package console_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/cmd/cairn/console"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestCountRuns: a store's RunCounter counts what ListRuns lists, by
// status and by workflow, in memory and on Redis.
func TestCountRuns(t *testing.T) {
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			var store backend.Store = inmem.New()
			if kind == "redis" {
				s, err := redis.Open(redistest.Start(t).URL())
				require.NoError(t, err)
				t.Cleanup(func() { s.Close() })
				store = s
			}
			w := newWorld(t, store, console.Options{})
			w.start("parrot", "p-1", backend.StatusCompleted)
			w.start("parrot", "p-2", backend.StatusCompleted)
			w.start("support", "s-1", backend.StatusAwaitingApproval)
			w.start("clerk", "c-1", backend.StatusWaiting)
			ctx := context.Background()
			got, err := store.(backend.RunCounter).CountRuns(ctx)
			require.NoError(t, err)
			list, err := store.ListRuns(ctx, backend.RunFilter{})
			require.NoError(t, err)
			var want backend.RunCounts
			for _, r := range list {
				want.Add(r.Status, r.Workflow)
			}
			assert.Equal(t, want, got)
			assert.Equal(t, 4, got.Total)
			assert.Equal(t, 2, got.ByStatus[backend.StatusCompleted])
			assert.Equal(t, map[string]int{"parrot": 2, "support": 1, "clerk": 1}, got.ByWorkflow)
		})
	}
}
