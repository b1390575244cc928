package redis_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/durable/storetest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// setUser creates or resets an ACL user with a password and rules.
func setUser(t *testing.T, admin *goredis.Client, user, password string, rules []string) {
	t.Helper()
	args := []any{"acl", "setuser", user, "on", ">" + password}
	for _, r := range rules {
		args = append(args, r)
	}
	require.NoError(t, admin.Do(t.Context(), args...).Err(), "ACL SETUSER %s", user)
}

// aclDenials returns what ACL LOG recorded, one line per entry.
func aclDenials(t *testing.T, admin goredis.Cmdable) []string {
	t.Helper()
	entries, err := admin.ACLLog(context.Background(), 100).Result()
	require.NoError(t, err, "ACL LOG")
	var out []string
	for _, e := range entries {
		out = append(out, fmt.Sprintf("%s: %s %s (%s, %d times)", e.Username, e.Reason, e.Object, e.Context, e.Count))
	}
	return out
}

// TestACLConformance runs the conformance suite through stores whose
// users have ACLRules of their prefix and nothing more: the store needs
// no other command and no other key. ACL LOG, which records every
// denial, even of a command a script calls in a pcall, stays empty.
func TestACLConformance(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	admin := srv.Client()
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T, clock backend.Clock) backend.Store {
		i := n.Add(1)
		prefix, user := fmt.Sprintf("acl%d", i), fmt.Sprintf("worker%d", i)
		setUser(t, admin, user, "pw", redis.ACLRules(prefix))
		s, err := redis.Open(withUser(srv.URL(), user+":pw"), redis.WithClock(clock), redis.WithPrefix(prefix))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return damageable{s, admin, prefix}
	})
	assert.Empty(t, aclDenials(t, admin), "ACL LOG: what the store was denied")
}

// TestACLBeyondTheSuite does, as a user with ACLRules, what the
// conformance suite does not: it uses database 2 (SELECT), runs the
// scripts after Redis lost them (EVAL, SCRIPT LOAD), pings, and commits to
// a history repaired by hand (LTRIM). ACL LOG records no denial.
func TestACLBeyondTheSuite(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	admin := srv.Client()
	setUser(t, admin, "worker", "pw", redis.ACLRules(""))
	url := withUser(strings.TrimSuffix(srv.URL(), "/0")+"/2", "worker:pw")
	s := open(t, url)
	require.NoError(t, s.Client().Ping(ctx).Err(), "PING")
	roundTrip(t, s, "r1")

	for i := range 2 {
		require.NoError(t, admin.ScriptFlush(ctx).Err())
		_, _ = pollNow(t, s) // EVALSHA, NOSCRIPT, EVAL
		require.NoError(t, admin.ScriptFlush(ctx).Err())
		roundTrip(t, s, fmt.Sprintf("r%d", 2+i)) // a pipeline: SCRIPT LOAD, then again
	}
	stats := mustInfo(t, admin)
	assert.Contains(t, stats, "cmdstat_eval:", "EVAL was run")
	assert.Contains(t, stats, "cmdstat_script|load:", "SCRIPT LOAD was run")

	// An entry written outside the store, then cut off: the repair of a
	// parked run (see cairn show). The next commit appends as usual.
	lease, err := s.Lease(ctx, "r1", "w1", time.Minute)
	require.NoError(t, err)
	db2 := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), DB: 2})
	defer db2.Close()
	history := s.HistoryKey("r1")
	require.NoError(t, db2.RPush(ctx, history, "foreign").Err())
	require.NoError(t, db2.LTrim(ctx, history, 0, 0).Err())
	require.NoError(t, s.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Events: [][]byte{[]byte("second")},
		Run: backend.RunInfo{Status: backend.StatusRunning}}))
	events, err := s.ReadHistory(ctx, "r1", 1)
	require.NoError(t, err)
	assert.Equal(t, []byte("second"), events[len(events)-1])

	// The reconciler: a pass that scans (no partition was reconciled
	// yet), and the background loop, which takes each partition's lock.
	rec, err := s.Reconcile(ctx)
	require.NoError(t, err, "Reconcile")
	assert.NotEmpty(t, rec.Recovered, "the first Reconcile scans")
	bg := open(t, url, redis.WithReconcileInterval(20*time.Millisecond))
	pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, _ = bg.Poll(pctx, "w") // a blocking Poll starts the janitor and the reconciler
	require.Eventually(t, func() bool { return strings.Contains(mustInfo(t, admin), "cmdstat_set:") },
		10*time.Second, 10*time.Millisecond, "the reconciler's lock (SET NX PX) was never taken")
	assert.Contains(t, mustInfo(t, admin), "cmdstat_scan:", "SCAN was run")

	assert.Empty(t, aclDenials(t, admin), "ACL LOG: what the store was denied")
}

func mustInfo(t *testing.T, admin *goredis.Client) string {
	t.Helper()
	stats, err := admin.Info(t.Context(), "commandstats").Result()
	require.NoError(t, err)
	return stats
}

// TestACLCluster uses a store on a Redis Cluster as a user with
// ACLRules: the cluster client's own commands (CLUSTER SLOTS) are in it.
func TestACLCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster test: starts three redis-servers and waits for the cluster to form (about 2 s); run without -short")
	}
	cluster := redistest.StartCluster(t, 3)
	for _, m := range cluster.Masters {
		setUser(t, m.Client(), "worker", "pw", redis.ACLRules(""))
	}
	s := open(t, withUser(cluster.URL(), "worker:pw"))
	for i := range 20 {
		roundTrip(t, s, fmt.Sprintf("run-%d", i))
	}
	task, ok := pollNow(t, s)
	require.True(t, ok, "Poll: want a task")
	lease, err := s.Lease(t.Context(), task.RunID, "w1", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Commit(t.Context(), backend.Commit{Lease: lease, Expect: 1, Events: [][]byte{[]byte("done")},
		Run: backend.RunInfo{Status: backend.StatusCompleted}, Release: true}))
	require.NoError(t, s.Ack(t.Context(), task))
	runs, err := s.ListRuns(t.Context(), backend.RunFilter{})
	require.NoError(t, err)
	assert.Len(t, runs, 20)
	require.NoError(t, s.Client().Ping(t.Context()).Err())
	for _, m := range cluster.Masters {
		assert.Empty(t, aclDenials(t, m.Client()), "ACL LOG of %s", m.Addr())
	}
}

// TestACLRulesInReadme checks that README.md gives the rules of
// ACLRules, so that the two cannot drift apart.
func TestACLRulesInReadme(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	want := "ACL SETUSER cairn-worker on >PASSWORD " + strings.Join(redis.ACLRules(""), " ")
	assert.True(t, slices.Contains(strings.Split(string(data), "\n"), want),
		"README.md must hold this line, as ACLRules(\"\") gives it:\n%s", want)
}

// TestACLRules checks the rules' key pattern.
func TestACLRules(t *testing.T) {
	rules := redis.ACLRules("")
	assert.Equal(t, []string{"resetkeys", "~cairn:*", "resetchannels", "-@all"}, rules[:4])
	assert.Len(t, rules, 4+len(redis.ACLCommands()))
	assert.Equal(t, `~my\*app\[1\]:*`, redis.ACLRules("my*app[1]")[1], "glob characters of a prefix are escaped")
	for _, c := range redis.ACLCommands() {
		assert.Contains(t, rules, "+"+c)
	}
}
