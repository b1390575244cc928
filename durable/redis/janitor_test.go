package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestJanitorRequeuesUnrecordedTask checks that a task whose reader died
// between reading it and recording its delivery is queued again by the
// janitor, although the run's queued mark, which that reader never
// cleared, still stands. (A worker killed at that moment left its run
// stranded: the mark made every later enqueue add nothing.)
func TestJanitorRequeuesUnrecordedTask(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	clock := durabletest.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := Open(srv.URL(), WithClock(clock), WithPartitions(1))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	p := s.parts[0]
	_, err = s.take(ctx, p, "w", 1, nil) // a reader's first look creates the group
	require.NoError(t, err)
	_, _, err = s.CreateRun(ctx, backend.RunInfo{ID: "r1", Workflow: "wf"}, []byte("first"))
	require.NoError(t, err)
	err = s.client.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: "dead",
		Streams: []string{p.keys.tasks, ">"}, Count: 1, Block: -1}).Err()
	require.NoError(t, err)
	done, cancel := context.WithCancel(ctx)
	cancel()
	task, err := s.Poll(done, "w")
	require.ErrorIs(t, err, context.Canceled, "Poll = %+v; want nothing ready before the janitor runs", task)
	n, err := s.run(ctx, s.scripts.janitor, p.keys.list(), group, "janitor", 0, 10, forgetConsumersAfter.Milliseconds())
	require.NoError(t, err, "janitor")
	require.Equal(t, int64(1), n, "janitor: want 1 run queued again")
	task, err = s.Poll(done, "w")
	require.NoError(t, err, "Poll after the janitor")
	assert.Equal(t, "r1", task.RunID, "Poll after the janitor: want a task for r1")
}
