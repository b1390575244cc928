package redis

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestACLJanitorsAndActivities runs, as a user with ACLRules, what the
// conformance suite does not reach: the janitors' scripts (they run on a
// timer of real time), down to their deleting a consumer that has been
// idle too long, and every activity script. ACL LOG records no denial.
func TestACLJanitorsAndActivities(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	admin := srv.Client()
	args := []any{"acl", "setuser", "worker", "on", ">pw"}
	for _, r := range ACLRules("acl") {
		args = append(args, r)
	}
	require.NoError(t, admin.Do(ctx, args...).Err())
	clock := durabletest.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s, err := Open(strings.Replace(srv.URL(), "redis://", "redis://worker:pw@", 1), WithClock(clock), WithPrefix("acl"),
		WithPartitions(1), WithVisibilityTimeout(time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })

	exerciseActivities(t, s, clock, []string{"gpu"})
	p := s.parts[0]
	_, err = s.take(ctx, p, "w", 1, nil) // makes the group and the consumer w
	require.NoError(t, err)
	_, err = s.run(ctx, s.scripts.janitor, p.keys.list(), group, "janitor", 0, janitorCount, -1)
	require.NoError(t, err, "janitor")
	consumers, err := admin.XInfoConsumers(ctx, p.keys.tasks, group).Result()
	require.NoError(t, err)
	for _, c := range consumers {
		assert.NotEqual(t, "w", c.Name, "the janitor should have forgotten consumer w")
	}

	log, err := admin.ACLLog(ctx, 10).Result()
	require.NoError(t, err)
	for _, e := range log {
		t.Errorf("ACL LOG: %s was denied %s %s (%s)", e.Username, e.Reason, e.Object, e.Context)
	}
}
