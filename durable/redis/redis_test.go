package redis_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/durable/storetest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestConformance runs the store suite on one server, with a fresh key
// prefix (so an empty store) for each subtest. The store can be damaged
// (storetest.Damager) as a person with redis-cli can.
func TestConformance(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	opts, err := goredis.ParseURL(srv.URL())
	require.NoError(t, err)
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T, clock backend.Clock) backend.Store {
		prefix := fmt.Sprintf("suite%d", n.Add(1))
		s, err := redis.Open(srv.URL(), redis.WithClock(clock), redis.WithPrefix(prefix))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return damageable{s, rdb, prefix}
	})
}

// damageable is a Store whose histories can be appended to with RPUSH, as
// by hand.
type damageable struct {
	*redis.Store
	rdb    *goredis.Client
	prefix string
}

var _ storetest.Damager = damageable{}

func (d damageable) AppendForeign(ctx context.Context, runID string, entry []byte) error {
	return d.rdb.RPush(ctx, d.prefix+":{r:"+runID+"}:history", entry).Err()
}
