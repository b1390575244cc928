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

// TestCorruptEntryParks appends to a waiting run's history stream an entry
// no commit wrote (garbage, another run's event, a well-formed event at the
// next position, an entry at a stream id that is no position), and checks that the run is parked for real, with
// a readable reason and no write loop, and that it finishes once the entry
// is removed and the run resumed.
func TestCorruptEntryParks(t *testing.T) {
	srv := redistest.Start(t)
	raw, err := goredis.ParseURL(srv.URL())
	require.NoError(t, err)
	rdb := goredis.NewClient(raw)
	t.Cleanup(func() { rdb.Close() })

	tests := []struct {
		name string
		// damage adds an entry to the history stream key, whose run
		// has length events, and returns the entry's stream id.
		damage func(ctx context.Context, key string, length int64, foreign []byte) (string, error)
	}{
		{"Garbage", func(ctx context.Context, key string, length int64, _ []byte) (string, error) {
			return rdb.XAdd(ctx, &goredis.XAddArgs{Stream: key, ID: fmt.Sprintf("%d-0", length+1), Values: []any{"e", "not an event"}}).Result()
		}},
		{"ForeignEvent", func(ctx context.Context, key string, length int64, foreign []byte) (string, error) {
			return rdb.XAdd(ctx, &goredis.XAddArgs{Stream: key, ID: fmt.Sprintf("%d-0", length+1), Values: []any{"e", foreign}}).Result()
		}},
		{"ForgedEnd", func(ctx context.Context, key string, length int64, _ []byte) (string, error) {
			// Decodes, at the right position: only the record's count
			// tells it from a commit.
			forged, err := backend.EncodeEvent(backend.Event{Seq: length + 1, Type: backend.EventRunCompleted, Payload: []byte(`"forged"`)}, nil)
			if err != nil {
				return "", err
			}
			return rdb.XAdd(ctx, &goredis.XAddArgs{Stream: key, ID: fmt.Sprintf("%d-0", length+1), Values: []any{"e", forged}}).Result()
		}},
		{"NoPosition", func(ctx context.Context, key string, _ int64, _ []byte) (string, error) {
			return rdb.XAdd(ctx, &goredis.XAddArgs{Stream: key, ID: "*", Values: []any{"x", "y"}}).Result()
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
			entry, err := tt.damage(ctx, key, info.HistoryLen, other[len(other)-1])
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

			// Repair: remove the entry, then resume. The store sets the
			// stream's last id back on the next commit.
			require.NoError(t, rdb.XDel(ctx, key, entry).Err())
			require.NoError(t, client.Resume(ctx, "victim"))
			got, err := run.Result(ctx)
			require.NoError(t, err)
			assert.Equal(t, "go", got)
		})
	}
}
