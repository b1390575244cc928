package redis_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/durable/storetest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestConformance runs the store suite on one server, with a fresh key
// prefix (so an empty store) for each subtest.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T, clock backend.Clock) backend.Store {
		s, err := redis.Open(srv.URL(), redis.WithClock(clock), redis.WithPrefix(fmt.Sprintf("suite%d", n.Add(1))))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	})
}
