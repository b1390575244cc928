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
	"github.com/cairn-dev/cairn/durable/storetest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// Run ids that test the hash tags: braces (the tag ends at the first "}"
// after the first "{"), an empty tag, unicode.
var oddRunIDs = []string{"r1", "a{b}c", "{}", "}{", "{r:x}", "x}y{z", "日本語-注文", "emoji-🍕", "sp ace", strings.Repeat("long", 64)}

// Queue names that test the hash tags of activity queues: "gpu" and
// "gpu}b" share a slot, and must not share attempts.
var oddQueueNames = []string{"gpu", "gpu}b", "{gpu}", "{}", "}{", "{q:x}", "x}y{z", "日本語-キュー", "emoji-🍕", "sp ace", strings.Repeat("long", 64)}

// slot is the Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag
// (the text between the first "{" and the next "}", if not empty), else of
// the key, modulo 16384.
func slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return keySlot(key)
}

// TestSlotMatchesRedis checks slot against CLUSTER KEYSLOT.
func TestSlotMatchesRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.WithArgs("--cluster-enabled", "yes"))
	s := New(srv.Client())
	keys := []string{"", "foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}"}
	for _, id := range oddRunIDs {
		rk := s.runKeys(id)
		keys = append(keys, rk.commitKeys()...)
	}
	for _, name := range oddQueueNames {
		keys = append(keys, s.queueKeys(name).list()...)
	}
	for _, p := range s.parts {
		keys = append(keys, p.keys.list()...)
		keys = append(keys, p.keys.runs(), p.keys.status("running"), p.keys.active())
	}
	for _, key := range keys {
		want, err := srv.Client().ClusterKeySlot(t.Context(), key).Result()
		require.NoError(t, err)
		assert.Equal(t, int(want), slot(key), "slot(%q); want what CLUSTER KEYSLOT says", key)
	}
}

// TestScriptKeysShareSlot checks, for every script the store runs (all of
// them run here), that the keys it is called with hash to one slot: a hook
// looks at every EVAL and EVALSHA sent while the conformance suite and a
// round of calls with odd run ids and queue names run. The stores take
// the paths they take on a Cluster (on a single server, CreateRun's
// script also queues the run, in its partition's keys).
func TestScriptKeysShareSlot(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster check: runs the whole conformance suite again to check every script's keys share a slot; TestConformance covers the store under -short; run without -short")
	}
	srv := redistest.Start(t)
	check := &slotCheck{t: t, seen: map[string]bool{}}
	open := func(t *testing.T, opts ...Option) *Store {
		s, err := Open(srv.URL(), opts...)
		require.NoError(t, err)
		s.cluster = true
		s.Client().AddHook(cmdHook(check.check))
		t.Cleanup(func() { s.Close() })
		return s
	}
	var n int
	storetest.Run(t, func(t *testing.T, clock backend.Clock) backend.Store {
		n++
		return open(t, WithClock(clock), WithPrefix(fmt.Sprintf("slots%d", n)))
	})
	t.Run("OddRunIDs", func(t *testing.T) {
		clock := durabletest.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
		s := open(t, WithClock(clock), WithPrefix("odd"), WithVisibilityTimeout(time.Second))
		exercise(t, s, clock, oddRunIDs)
		// The janitor runs on real time; call it as its loop does.
		for _, p := range s.parts {
			_, err := s.run(t.Context(), s.scripts.janitor, p.keys.list(), group, "janitor", 1, 10, 1)
			require.NoError(t, err)
		}
	})
	t.Run("OddQueueNames", func(t *testing.T) {
		clock := durabletest.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
		s := open(t, WithClock(clock), WithPrefix("oddq"), WithVisibilityTimeout(time.Second))
		exerciseActivities(t, s, clock, oddQueueNames)
	})

	check.mu.Lock()
	defer check.mu.Unlock()
	for name, sc := range map[string]*goredis.Script{"create": s0.create, "lease": s0.lease, "commit": s0.commit,
		"send": s0.send, "archive": s0.archive, "watch": s0.watch, "enqueue": s0.enqueue, "take": s0.take, "settle": s0.settle, "ack": s0.ack,
		"janitor": s0.janitor, "mark": s0.mark, "activity_take": s0.actTake, "activity_ack": s0.actAck, "activity_janitor": s0.actJanitor} {
		assert.True(t, check.seen[sc.Hash()], "script %s never ran", name)
	}
}

// s0 names the scripts by hash for TestScriptKeysShareSlot.
var s0 = newScripts()

// exercise makes every call of the store on runs with the given ids.
func exercise(t *testing.T, s *Store, clock *durabletest.Clock, ids []string) {
	ctx := t.Context()
	for _, id := range ids {
		_, _, err := s.CreateRun(ctx, backend.RunInfo{ID: id, Workflow: "wf"}, []byte("first"))
		require.NoError(t, err, "CreateRun(%q)", id)
		require.NoError(t, s.Send(ctx, id, []byte("hello")), "Send(%q)", id)
		lease, err := s.Lease(ctx, id, "w1", time.Minute)
		require.NoError(t, err, "Lease(%q)", id)
		inbox, err := s.ReadInbox(ctx, id)
		require.NoError(t, err, "ReadInbox(%q)", id)
		require.Len(t, inbox, 1, "ReadInbox(%q)", id)
		err = s.Commit(ctx, backend.Commit{Lease: lease, Expect: 1, Events: [][]byte{[]byte("second")},
			Consumed: []string{inbox[0].ID}, Run: backend.RunInfo{Status: backend.StatusWaiting, WakeAt: clock.Now().Add(time.Second)},
			Release: true})
		require.NoError(t, err, "Commit(%q)", id)
		_, err = s.Lease(ctx, id, "w2", time.Second)
		require.NoError(t, err, "Lease(%q) by w2", id)
		require.NoError(t, s.MarkExported(ctx, []backend.ExportMark{{RunID: id, Position: 2}}), "MarkExported(%q)", id)
		require.NoError(t, s.WatchRun(ctx, id, 0), "WatchRun(%q)", id)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		require.ErrorIs(t, s.WatchCommits(wctx, id, 2), context.DeadlineExceeded, "WatchCommits(%q)", id)
		cancel()
		require.NoError(t, s.PutBlobs(ctx, id, map[string][]byte{"k": []byte("blob")}), "PutBlobs(%q)", id)
		blobs, err := s.GetBlobs(ctx, id, []string{"k"})
		require.NoError(t, err, "GetBlobs(%q)", id)
		assert.Equal(t, "blob", string(blobs["k"]), "GetBlobs(%q)", id)
	}
	clock.Advance(2 * time.Second) // wake times and lease expiries: take claims, settle queues
	seen := map[string]bool{}
	for range 3 * len(ids) {
		task, err := s.Poll(ctx, "w1")
		require.NoError(t, err)
		require.NoError(t, s.Ack(ctx, task))
		if seen[task.RunID] = true; len(seen) == len(ids) {
			break
		}
	}
	runs, err := s.ListRuns(ctx, backend.RunFilter{})
	require.NoError(t, err, "ListRuns")
	assert.Len(t, runs, len(ids), "ListRuns")
	for _, id := range ids {
		h, err := s.ReadHistory(ctx, id, 1)
		require.NoError(t, err, "ReadHistory(%q)", id)
		assert.Len(t, h, 2, "ReadHistory(%q)", id)
	}
}

// slotCheck (its check is a cmdHook) fails the test if a script is called with keys
// in more than one slot.
type slotCheck struct {
	t    *testing.T
	mu   sync.Mutex
	seen map[string]bool // script hashes called
}

// cmdHook is a go-redis hook that calls itself with every command sent,
// alone or in a pipeline, before it is sent.
type cmdHook func(cmd goredis.Cmder)

func (h cmdHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h cmdHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h(cmd)
		return next(ctx, cmd)
	}
}

func (h cmdHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			h(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *slotCheck) check(cmd goredis.Cmder) {
	name := strings.ToLower(cmd.Name())
	if name != "evalsha" && name != "eval" {
		return
	}
	args := cmd.Args()
	numKeys, err := strconv.Atoi(fmt.Sprint(args[2]))
	if err != nil || len(args) < 3+numKeys {
		c.t.Errorf("%s with malformed arguments %v", name, args)
		return
	}
	hash := fmt.Sprint(args[1])
	if name == "eval" {
		hash = goredis.NewScript(hash).Hash() // the script's source
	}
	c.mu.Lock()
	c.seen[hash] = true
	c.mu.Unlock()
	if numKeys == 0 {
		c.t.Errorf("%s %s with no keys", name, hash)
		return
	}
	first := slot(fmt.Sprint(args[3]))
	for _, k := range args[3 : 3+numKeys] {
		if slot(fmt.Sprint(k)) != first {
			c.t.Errorf("script %s called with keys in different slots: %v", hash, args[3:3+numKeys])
			return
		}
	}
}

// TestClusterConformance runs the conformance suite through a
// ClusterClient on a Redis Cluster of 3 masters, each serving a third of
// the slots. Redis in cluster mode refuses a script whose keys are in
// different slots, or that touches a key it was not given, and the
// masters answer MOVED for keys they do not serve, so this runs every
// script, and every command outside scripts, as Cluster runs it.
func TestClusterConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster test: runs the whole conformance suite again through a ClusterClient on 3 masters; TestConformance covers the store under -short; run without -short")
	}
	cluster := redistest.StartCluster(t, 3)
	var n int
	storetest.Run(t, func(t *testing.T, clock backend.Clock) backend.Store {
		n++
		client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cluster.Addrs()})
		s := New(client, WithClock(clock), WithPrefix(fmt.Sprintf("cluster%d", n)))
		t.Cleanup(func() { s.Close() })
		// Closing the client first ends the readers' blocking reads at
		// once, so Close does not wait for them.
		t.Cleanup(func() { client.Close() })
		return s
	})
}
