package redis

import (
	"context"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestBatchSendsCallsTogether hands three calls to one flush: they go to
// Redis in one pipeline, each gets back its own commands, and one call's
// failed command is that call's error only; a call whose context ended
// before the flush is not sent.
func TestBatchSendsCallsTogether(t *testing.T) {
	srv := redistest.Start(t)
	s, err := Open(srv.URL())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	var pipelines atomic.Int64
	s.Client().AddHook(pipelineCounter{&pipelines})
	ctx := t.Context()

	call := func(ctx context.Context, fill func(p goredis.Pipeliner)) *batchCall {
		return &batchCall{ctx: ctx, fill: fill, done: make(chan struct{})}
	}
	var a, b *goredis.StatusCmd
	var bad *goredis.Cmd
	gone, cancel := context.WithCancel(ctx)
	cancel()
	calls := []*batchCall{
		call(ctx, func(p goredis.Pipeliner) { a = p.Set(ctx, "a", "1", 0) }),
		call(ctx, func(p goredis.Pipeliner) { bad = p.Do(ctx, "incr", "a", "extra") }),
		call(ctx, func(p goredis.Pipeliner) { b = p.Set(ctx, "b", "2", 0); p.Get(ctx, "b") }),
		call(gone, func(p goredis.Pipeliner) { p.Set(ctx, "never", "x", 0) }),
	}
	s.send(calls)

	assert.Equal(t, int64(1), pipelines.Load(), "pipelines sent")
	for i, c := range calls {
		<-c.done
		switch i {
		case 0:
			assert.NoError(t, c.err)
			assert.Equal(t, []goredis.Cmder{a}, c.cmds)
		case 1:
			assert.Error(t, c.err, "INCR with a wrong number of arguments")
			assert.Equal(t, []goredis.Cmder{bad}, c.cmds)
		case 2:
			assert.NoError(t, c.err)
			require.Len(t, c.cmds, 2)
			assert.Equal(t, goredis.Cmder(b), c.cmds[0])
			assert.Equal(t, "2", c.cmds[1].(*goredis.StringCmd).Val())
		case 3:
			assert.ErrorIs(t, c.err, context.Canceled)
			assert.Empty(t, c.cmds)
		}
	}
	n, err := srv.Client().Exists(ctx, "never").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the canceled call was sent")
}

// pipelineCounter is a go-redis hook that counts the pipelines sent, but
// those that set up a new connection.
type pipelineCounter struct{ n *atomic.Int64 }

func (h pipelineCounter) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (h pipelineCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (h pipelineCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() != "client" { // not a new connection's setup
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}
