package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/console"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// The console at scale: 10,000 runs, 2,000 of them awaiting approval,
// in memory and on a real redis-server. Each benchmark serves one page
// through the whole handler (authentication, store reads, template), as
// a browser asks for it:
//
//	go test -run X -bench Console -benchtime 20x ./cmd/cairn/console
//
// The counts by status are counted in the background (CountsMaxAge):
// CountRuns is what one count costs with the store's backend.RunCounter,
// Count what it costs with ListRuns of every run.

const (
	benchRuns    = 10_000
	benchPending = 2_000
)

func BenchmarkConsole(b *testing.B) {
	for _, kind := range []string{"memory", "redis"} {
		b.Run(kind, func(b *testing.B) {
			var store backend.Store
			if kind == "memory" {
				store = inmem.New()
			} else {
				srv := redistest.Start(b)
				s, err := redis.Open(srv.URL())
				require.NoError(b, err)
				b.Cleanup(func() { s.Close() })
				store = s
			}
			w := newWorld(b, store, console.Options{})
			populate(b, w)
			c := w.client()
			// One request first: the counts are then in the cache.
			benchGet(b, c, w.srv.URL+"/runs")
			for _, page := range []struct{ name, path string }{
				{"RunList", "/runs"},
				{"RunListPage20", "/runs?page=20"},
				{"RunListAwaiting", "/runs?status=awaiting_approval"},
				{"RunListWorkflow", "/runs?workflow=refunder"},
				{"Search", "/runs?q=done-05042"},
				{"Inbox", "/inbox"},
				{"InboxPage40", "/inbox?page=40"},
				{"Run", "/runs/wait-00042"},
			} {
				b.Run(page.name, func(b *testing.B) {
					for b.Loop() {
						benchGet(b, c, w.srv.URL+page.path)
					}
				})
			}
			b.Run("CountRuns", func(b *testing.B) {
				for b.Loop() {
					c, err := store.(backend.RunCounter).CountRuns(context.Background())
					require.NoError(b, err)
					require.Equal(b, benchRuns, c.Total)
				}
			})
			b.Run("Count", func(b *testing.B) {
				for b.Loop() {
					list, err := w.rt.Client().ListRuns(context.Background(), backend.RunFilter{})
					require.NoError(b, err)
					require.Len(b, list, benchRuns)
				}
			})
			b.Run("Pending", func(b *testing.B) {
				for b.Loop() {
					p, err := w.rt.Pending(context.Background(), agent.PendingFilter{})
					require.NoError(b, err)
					require.Len(b, p, benchPending)
				}
			})
		})
	}
}

func benchGet(b *testing.B, c *http.Client, u string) {
	res, err := c.Get(u)
	require.NoError(b, err)
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	require.NoError(b, err)
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusSeeOther {
		b.Fatalf("GET %s: %s", u, res.Status)
	}
}

// populate starts benchRuns runs: benchPending that wait for approval,
// the others done, and waits until they are.
func populate(b *testing.B, w *world) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range benchRuns {
		name, id := "parrot", fmt.Sprintf("done-%05d", i)
		if i < benchPending {
			name, id = "refunder", fmt.Sprintf("wait-%05d", i)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := w.rt.Start(ctx, w.agents[name], id, agent.Input{Message: "hello"})
			if err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	for {
		list, err := w.rt.Client().ListRuns(ctx, backend.RunFilter{Status: backend.StatusAwaitingApproval})
		require.NoError(b, err)
		done, err := w.rt.Client().ListRuns(ctx, backend.RunFilter{Status: backend.StatusCompleted})
		require.NoError(b, err)
		if len(list) == benchPending && len(done) == benchRuns-benchPending {
			break
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("after %v: %d awaiting approval, %d completed", time.Since(start), len(list), len(done))
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Logf("%d runs (%d awaiting approval) in %v", benchRuns, benchPending, time.Since(start).Round(time.Millisecond))
}
