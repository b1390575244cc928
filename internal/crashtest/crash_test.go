package crashtest_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/childproc"
	"github.com/cairn-dev/cairn/internal/crashtest"
	"github.com/cairn-dev/cairn/internal/redistest"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashtest.EnvChild) != "" {
		if err := crashtest.Child(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "child worker:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const want = "ship(pack(charge(reserve(o-1))) via ups)"

// child is a worker process: this test binary run again.
type child = childproc.Process

// startChild starts a worker process with extra environment and waits
// until it runs.
func startChild(t *testing.T, name, url string, env ...string) *child {
	t.Helper()
	base := []string{crashtest.EnvChild + "=1", crashtest.EnvURL + "=" + url, crashtest.EnvLease + "=1s"}
	return childproc.Start(t, name, "^$", crashtest.Ready, append(base, env...)...)
}

// world is a Redis server with a client and a store on it.
type world struct {
	t      *testing.T
	srv    *redistest.Server
	rdb    *goredis.Client
	client *durable.Client
}

func newWorld(t *testing.T, opts ...redistest.Option) *world {
	srv := redistest.Start(t, opts...)
	store, err := redis.Open(srv.URL())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	return &world{t: t, srv: srv, rdb: srv.Client(), client: durable.NewClient(store, durable.ClientOptions{})}
}

// start starts the order run.
func (w *world) start() {
	w.t.Helper()
	wf := durable.NewWorkflow("order", func(durable.Context, string) (string, error) { return "", nil })
	_, err := wf.Start(context.Background(), w.client, "o-1", "o-1")
	require.NoError(w.t, err)
}

// shipWhenAsked sends the Ship signal once the run waits for it, until the
// test ends.
func (w *world) shipWhenAsked() {
	ctx, cancel := context.WithCancel(context.Background())
	w.t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			info, err := w.client.Describe(ctx, "o-1")
			if err == nil && strings.Contains(info.Waiting, "signal ship") {
				_ = crashtest.Ship.Send(ctx, w.client, "o-1", "ups")
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
}

// result waits for the run's result.
func (w *world) result() string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wf := durable.NewWorkflow("order", func(durable.Context, string) (string, error) { return "", nil })
	got, err := wf.Get(w.client, "o-1").Result(ctx)
	if err != nil {
		info, _ := w.client.Describe(context.Background(), "o-1")
		w.t.Fatalf("result: %v (run %+v)", err, info)
	}
	return got
}

// effects returns executions per activity, executions per idempotency key
// and charges made.
func (w *world) effects() (byName, byKey map[string]string, charges string) {
	ctx := context.Background()
	byName = w.rdb.HGetAll(ctx, crashtest.EffectsKey).Val()
	byKey = w.rdb.HGetAll(ctx, crashtest.KeysKey).Val()
	charges = w.rdb.Get(ctx, crashtest.ChargesKey).Val()
	return byName, byKey, charges
}

// commitsOfACleanRun runs the workflow once without crashing and counts the
// commits its worker makes.
func commitsOfACleanRun(t *testing.T) int {
	w := newWorld(t)
	c := startChild(t, "clean", w.srv.URL())
	w.start()
	w.shipWhenAsked()
	require.Equal(t, want, w.result(), "clean run")
	n := 0
	for _, l := range c.Output() {
		if strings.HasPrefix(l, crashtest.Commit+" ") {
			n++
		}
	}
	c.Kill()
	return n
}

// killAndTakeOver starts the order run in a worker that stops where stopAt
// says, kills it with SIGKILL there, lets a new worker process finish the
// run, and checks its result.
func killAndTakeOver(t *testing.T, stopAt string) *world {
	t.Helper()
	w := newWorld(t)
	doomed := startChild(t, "doomed", w.srv.URL(), stopAt)
	w.start()
	w.shipWhenAsked()
	doomed.WaitFor(crashtest.Stopped)
	doomed.Kill()
	startChild(t, "heir", w.srv.URL())
	require.Equal(t, want, w.result(), "result")
	return w
}

// TestKillAtEveryCommit kills a worker with SIGKILL right after each of the
// commits it makes (each journal boundary: a step started, completed, a
// timer set, a signal awaited) and lets a new worker process finish the
// run: same result, every activity ran exactly once.
func TestKillAtEveryCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills a worker process with SIGKILL after each of its commits (about 1.5 s each, a lease to expire); run without -short")
	}
	n := commitsOfACleanRun(t)
	t.Logf("a clean run makes %d commits", n)
	for k := 1; k <= n; k++ {
		t.Run(fmt.Sprintf("after_commit_%d", k), func(t *testing.T) {
			w := killAndTakeOver(t, fmt.Sprintf("%s=%d", crashtest.EnvStopAfterCommit, k))
			byName, byKey, charges := w.effects()
			for _, name := range []string{"reserve", "charge", "pack", "ship"} {
				assert.Equal(t, "1", byName[name], "times %s ran", name)
			}
			for key, n := range byKey {
				assert.Equal(t, "1", n, "times key %q was used", key)
			}
			assert.Equal(t, "1", charges, "charges")
			w.logTimerLateness()
		})
	}
}

// TestKillDuringActivity kills a worker inside each activity, after its
// side effect and before it returns: the new worker runs it again with the
// same idempotency key, so an activity that honours the key (charge) has
// its effect once, and one that does not has it twice, never silently.
func TestKillDuringActivity(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: kills a worker process with SIGKILL inside each activity and waits for its lease to expire; run without -short")
	}
	for _, name := range []string{"reserve", "charge", "pack", "ship"} {
		t.Run(name, func(t *testing.T) {
			w := killAndTakeOver(t, crashtest.EnvStopInActivity+"="+name)
			byName, byKey, charges := w.effects()
			for _, other := range []string{"reserve", "charge", "pack", "ship"} {
				wantN := "1"
				if other == name {
					wantN = "2"
				}
				assert.Equal(t, wantN, byName[other], "times %s ran", other)
			}
			for key, n := range byKey {
				if strings.HasPrefix(key, name+" ") {
					assert.Equal(t, "2", n, "times interrupted %s ran with key %q; want twice with one key", name, key)
				}
			}
			assert.Equal(t, "1", charges, "charges")
			w.attemptLost(name)
		})
	}
}

// attemptLost checks that history tells the interrupted attempt.
func (w *world) attemptLost(name string) {
	w.t.Helper()
	history, err := w.client.History(context.Background(), "o-1")
	require.NoError(w.t, err)
	assert.True(w.t, slices.ContainsFunc(history, func(e backend.Event) bool {
		return e.Type == backend.EventActivityAttemptFailed && e.Failure != nil && e.Failure.Kind == backend.KindLost
	}), "no lost attempt of %s in history", name)
}

// logTimerLateness logs how late the durable timer fired.
func (w *world) logTimerLateness() {
	history, err := w.client.History(context.Background(), "o-1")
	if err != nil {
		return
	}
	fireAt := map[int]time.Time{}
	for _, e := range history {
		switch e.Type {
		case backend.EventTimerStarted:
			fireAt[e.Step] = e.FireAt
		case backend.EventTimerFired:
			w.t.Logf("timer fired %v late", e.Time.Sub(fireAt[e.Step]).Round(time.Millisecond))
		}
	}
}

// TestStaleWorkerCannotWrite stops a worker with SIGSTOP in the middle of
// an activity until its lease has expired and another worker has finished
// the run, then continues it with SIGCONT: its writes are all rejected.
func TestStaleWorkerCannotWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: stops a worker process with SIGSTOP past its lease (several seconds of real time); run without -short")
	}
	w := newWorld(t)
	stale := startChild(t, "stale", w.srv.URL(), crashtest.EnvSlowActivity+"=charge", crashtest.EnvSlowFor+"=3s")
	w.start()
	stale.WaitFor(crashtest.In + " charge")
	stale.Signal(syscall.SIGSTOP)
	time.Sleep(1500 * time.Millisecond) // past the stale worker's 1s lease
	startChild(t, "heir", w.srv.URL())
	w.shipWhenAsked()
	require.Equal(t, want, w.result(), "result")
	before, err := w.client.History(context.Background(), "o-1")
	require.NoError(t, err)
	stale.Signal(syscall.SIGCONT)
	stale.WaitFor(crashtest.Fenced)
	after, err := w.client.History(context.Background(), "o-1")
	require.NoError(t, err)
	assert.Len(t, after, len(before), "the stale worker wrote: history grew")
}

// TestRedisRestart kills Redis (AOF, appendfsync always) in the middle of a
// run and starts it again: the worker reconnects by itself, the run
// finishes, and no activity whose completion was committed runs again.
func TestRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis restart test: kills and restarts redis-server under a worker process; run without -short")
	}
	w := newWorld(t, redistest.WithAOF())
	worker := startChild(t, "worker", w.srv.URL(), crashtest.EnvSlowActivity+"=pack", crashtest.EnvSlowFor+"=500ms")
	w.start()
	w.shipWhenAsked()
	worker.WaitFor(crashtest.In + " pack")
	before, err := w.client.History(context.Background(), "o-1")
	require.NoError(t, err)
	w.srv.Kill()
	time.Sleep(200 * time.Millisecond)
	w.srv.Restart()
	require.Equal(t, want, w.result(), "result")
	after, err := w.client.History(context.Background(), "o-1")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(after), len(before), "events lost by the restart")
	for i, e := range before {
		require.Equal(t, e.Type, after[i].Type, "event %d lost or changed by the restart", e.Seq)
		require.Equal(t, e.Step, after[i].Step, "event %d lost or changed by the restart", e.Seq)
	}
	byName, _, charges := w.effects()
	for _, name := range []string{"reserve", "charge"} {
		assert.Equal(t, "1", byName[name], "times %s, completed before the restart, ran", name)
	}
	assert.Equal(t, "1", charges, "charges")
}
