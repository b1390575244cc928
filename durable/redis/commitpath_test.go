package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestRunTouchesOnlyItsSlots checks that what a run's life costs in Redis
// (CreateRun, Send, Lease, Commit, a wake time, Poll and Ack) touches no
// key outside the run's slot and its partition's: a Cluster node that
// holds neither cannot stop the run. A hook records the keys of every
// command sent, after the store's one look at its prefix's layout
// (layout.go), which comes first.
func TestRunTouchesOnlyItsSlots(t *testing.T) {
	srv := redistest.Start(t)
	clock := durabletest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := Open(srv.URL(), WithClock(clock), WithReconcileInterval(-1))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	keys := &keyLog{}
	s.Client().AddHook(cmdHook(keys.add))
	ctx := t.Context()
	_, err = s.GetRun(ctx, "none")
	require.ErrorIs(t, err, backend.ErrRunNotFound)
	assert.Contains(t, keys.list(), "cairn:layout", "the first call checks the layout")

	for _, id := range oddRunIDs {
		keys.reset()
		_, _, err := s.CreateRun(ctx, backend.RunInfo{ID: id, Workflow: "wf"}, []byte("first"))
		require.NoError(t, err)
		require.NoError(t, s.Send(ctx, id, []byte("hello")))
		lease, err := s.Lease(ctx, id, "w1", time.Minute)
		require.NoError(t, err)
		require.NoError(t, s.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Events: [][]byte{[]byte("e2")},
			Run: backend.RunInfo{Status: backend.StatusWaiting, CreatedAt: clock.Now(), WakeAt: clock.Now().Add(time.Second)}, Release: true}))
		lease, err = s.Lease(ctx, id, "w1", time.Minute)
		require.NoError(t, err)
		require.NoError(t, s.Commit(ctx, backend.Commit{Lease: lease, Expect: 2, Events: [][]byte{[]byte("e3")},
			Run: backend.RunInfo{Status: backend.StatusCompleted, CreatedAt: clock.Now()}, Release: true}))
		run, part := slot(s.runKeys(id).run), slot(s.partFor(id).keys.tasks)
		for _, k := range keys.list() {
			if sl := slot(k); sl != run && sl != part {
				t.Errorf("run %q: key %q is in slot %d, not the run's (%d) or its partition's (%d)", id, k, sl, run, part)
			}
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for {
		keys.reset()
		task, err := s.Poll(cctx, "w1")
		if err != nil {
			break
		}
		require.NoError(t, s.Ack(ctx, task))
		part := slot(s.partFor(task.RunID).keys.tasks)
		for _, k := range keys.list() {
			if k == s.partFor(task.RunID).keys.tasks || slot(k) == part {
				continue
			}
			// Poll looks at every partition; Ack only at the task's.
			assert.True(t, strings.Contains(k, ":{p:"), "Poll/Ack of %q touched %q", task.RunID, k)
		}
	}
}

// keyLog records the keys of every command (its add is a cmdHook): the
// KEYS of a script, the first argument of any other command with one.
type keyLog struct {
	mu   sync.Mutex
	keys []string
}

func (l *keyLog) reset() { l.mu.Lock(); l.keys = nil; l.mu.Unlock() }

func (l *keyLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.keys...)
}

func (l *keyLog) add(cmd goredis.Cmder) {
	args := cmd.Args()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch name := strings.ToLower(cmd.Name()); name {
	case "evalsha", "eval":
		n, _ := strconv.Atoi(fmt.Sprint(args[2]))
		for _, k := range args[3 : 3+n] {
			l.keys = append(l.keys, fmt.Sprint(k))
		}
	case "xreadgroup":
		for i, a := range args {
			if strings.EqualFold(fmt.Sprint(a), "streams") {
				l.keys = append(l.keys, fmt.Sprint(args[i+1]))
			}
		}
	case "ping", "hello", "client", "script", "time":
	default:
		if len(args) > 1 {
			l.keys = append(l.keys, fmt.Sprint(args[1]))
		}
	}
}
