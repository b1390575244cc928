package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestCorruptEntryParks damages a waiting run's history list as a person
// or another program can (an entry appended that no commit wrote:
// garbage, another run's event, a well-formed event at the next position;
// an entry pushed in front; an entry within the history overwritten), and
// checks that the run is parked for real, with a readable reason and no
// write loop, and that it finishes once the damage is repaired and the
// run resumed.
func TestCorruptEntryParks(t *testing.T) {
	srv := redistest.Start(t)
	raw, err := goredis.ParseURL(srv.URL())
	require.NoError(t, err)
	rdb := goredis.NewClient(raw)
	t.Cleanup(func() { rdb.Close() })

	// trimTo is the repair of entries appended beyond the record's count:
	// LTRIM to the length the record counts.
	trimTo := func(key string, length int64) func(context.Context) error {
		return func(ctx context.Context) error { return rdb.LTrim(ctx, key, 0, length-1).Err() }
	}
	tests := []struct {
		name string
		// damage damages the history list key, whose run has length
		// events, and returns how to repair it.
		damage func(ctx context.Context, key string, length int64, foreign []byte) (repair func(context.Context) error, err error)
	}{
		{"Garbage", func(ctx context.Context, key string, length int64, _ []byte) (func(context.Context) error, error) {
			return trimTo(key, length), rdb.RPush(ctx, key, "not an event").Err()
		}},
		{"ForeignEvent", func(ctx context.Context, key string, length int64, foreign []byte) (func(context.Context) error, error) {
			return trimTo(key, length), rdb.RPush(ctx, key, foreign).Err()
		}},
		{"ForgedEnd", func(ctx context.Context, key string, length int64, _ []byte) (func(context.Context) error, error) {
			// Decodes, at the right position: only the record's count
			// tells it from a commit.
			forged, err := backend.EncodeEvent(backend.Event{Seq: length + 1, Type: backend.EventRunCompleted, Payload: []byte(`"forged"`)}, nil)
			if err != nil {
				return nil, err
			}
			return trimTo(key, length), rdb.RPush(ctx, key, forged).Err()
		}},
		{"PushedInFront", func(ctx context.Context, key string, _ int64, _ []byte) (func(context.Context) error, error) {
			// Every event moves one position down.
			repair := func(ctx context.Context) error { return rdb.LPop(ctx, key).Err() }
			return repair, rdb.LPush(ctx, key, "not an event").Err()
		}},
		{"Overwritten", func(ctx context.Context, key string, length int64, _ []byte) (func(context.Context) error, error) {
			// An entry the run committed, changed: the repair is to
			// restore it (from a backup).
			saved, err := rdb.LIndex(ctx, key, length-1).Result()
			if err != nil {
				return nil, err
			}
			repair := func(ctx context.Context) error { return rdb.LSet(ctx, key, length-1, saved).Err() }
			return repair, rdb.LSet(ctx, key, length-1, `{"v":1,"seq":1,"type":"run_sta`).Err()
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each on a prefix of its own; most of a case is waiting out lease TTLs
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			prefix := fmt.Sprint("corrupt", i)
			store := open(t, srv.URL(), redis.WithPrefix(prefix))
			proceed := durable.NewSignal[string]("proceed")
			flow := durable.NewWorkflow("flow", func(ctx durable.Context, _ int) (string, error) {
				return proceed.Receive(ctx)
			})
			w := durable.NewWorker(store, durable.WorkerOptions{ID: "w", LeaseTTL: time.Second})
			w.Register(flow)
			workerCtx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				assert.NoError(t, w.Run(workerCtx))
			}()
			defer func() { stop(); <-done }()

			client := durable.NewClient(store, durable.ClientOptions{})
			waiting := func(id string) backend.RunInfo {
				var info backend.RunInfo
				require.EventuallyWithT(t, func(c *assert.CollectT) {
					var err error
					info, err = client.Describe(ctx, id)
					assert.NoError(c, err)
					assert.Equal(c, backend.StatusWaiting, info.Status)
				}, 10*time.Second, 10*time.Millisecond)
				return info
			}
			_, err := flow.Start(ctx, client, "other", 0)
			require.NoError(t, err)
			run, err := flow.Start(ctx, client, "victim", 0)
			require.NoError(t, err)
			waiting("other")
			info := waiting("victim")

			key := prefix + ":{r:victim}:history"
			other, err := store.ReadHistory(ctx, "other", 1)
			require.NoError(t, err)
			repair, err := tt.damage(ctx, key, info.HistoryLen, other[len(other)-1])
			require.NoError(t, err)
			require.NoError(t, proceed.Send(ctx, client, "victim", "go"))

			require.EventuallyWithT(t, func(c *assert.CollectT) {
				info, err = client.Describe(ctx, "victim")
				assert.NoError(c, err)
				assert.Equal(c, backend.StatusParked, info.Status)
			}, 10*time.Second, 10*time.Millisecond)
			require.NotNil(t, info.Failure)
			assert.Equal(t, backend.KindCorrupt, info.Failure.Kind)
			assert.Contains(t, info.Failure.Message, "corrupt history entry")
			t.Log(info.Failure.Message)

			// No write loop: the record stays as parked. (Lease expiry
			// and redelivery would show within a few lease TTLs.)
			time.Sleep(2500 * time.Millisecond)
			again, err := client.Describe(ctx, "victim")
			require.NoError(t, err)
			assert.Equal(t, info.Version, again.Version, "the parked run's record keeps changing")

			require.NoError(t, repair(ctx))
			require.NoError(t, client.Resume(ctx, "victim"))
			got, err := run.Result(ctx)
			require.NoError(t, err)
			assert.Equal(t, "go", got)
		})
	}
}
