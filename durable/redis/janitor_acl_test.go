package redis_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/internal/syncbuf"
)

// TestJanitorDenied gives a store a user that lacks a command of the
// janitor (XAUTOCLAIM): the janitor says, at Error level, that it cannot
// run and why, rather than passing in silence.
func TestJanitorDenied(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	admin := srv.Client()
	setUser(t, admin, "worker", "pw", append(redis.ACLRules(""), "-xautoclaim"))
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	s := open(t, withUser(srv.URL(), "worker:pw"), redis.WithLogger(logger), redis.WithPartitions(1),
		redis.WithVisibilityTimeout(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := s.Poll(ctx, "w") // starts the readers and the janitor, which runs every second
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "level=ERROR") }, 5*time.Second, 10*time.Millisecond,
		"no error logged; the logs:\n%s", logs.String())
	line, _, _ := strings.Cut(logs.String()[strings.Index(logs.String(), "level=ERROR"):], "\n")
	assert.Contains(t, line, `msg="the janitor cannot run: Redis's ACL denies the store's user a command of the janitor`)
	assert.Contains(t, line, "give the user the rules of redis.ACLRules")
	assert.Contains(t, line, "partition=0 prefix=cairn")
	assert.Contains(t, line, "can't run this command")
	assert.Contains(t, aclDenials(t, admin), "worker: command xautoclaim (lua, 1 times)")
}

// TestReconcilerDenied runs the reconciler as a user without SCAN: its
// recovery of the partitions is denied at every pass, and it says so at
// Error level, with what it means.
func TestReconcilerDenied(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.Client()
	setUser(t, admin, "worker", "pw", append(redis.ACLRules(""), "-scan"))
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	s := open(t, withUser(srv.URL(), "worker:pw"), redis.WithLogger(logger),
		redis.WithReconcileInterval(20*time.Millisecond))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := s.Poll(ctx, "w") // starts the reconciler
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "level=ERROR") }, 5*time.Second, 10*time.Millisecond,
		"no error logged; the logs:\n%s", logs.String())
	line, _, _ := strings.Cut(logs.String()[strings.Index(logs.String(), "level=ERROR"):], "\n")
	assert.Contains(t, line, `msg="the reconciler cannot run: Redis's ACL denies the store's user a command of the reconciler`)
	assert.Contains(t, line, "give the user the rules of redis.ACLRules")
	assert.Contains(t, line, "NOPERM")
}
