// Package crashtest holds the reliability tests that kill real worker
// processes: kill -9 at every journal boundary of a multi-step workflow,
// a stale worker stopped past its lease, timers set by a process that then
// dies, and an agent's memory (a compaction and a memory write cut off).
// The worker under test is this package's test binary run again
// as a child process (see Child); it talks to the parent through a Redis
// server that the test harness starts.
package crashtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
)

// Environment variables that configure a child worker.
const (
	EnvChild = "CAIRN_CRASHTEST_CHILD" // set: the process is a child worker
	EnvURL   = "CAIRN_CRASHTEST_URL"   // Redis URL
	EnvLease = "CAIRN_CRASHTEST_LEASE" // lease TTL, a Go duration
	// EnvStopAfterCommit makes the worker stop (print Stopped and block)
	// right after its Nth successful commit.
	EnvStopAfterCommit = "CAIRN_CRASHTEST_STOP_AFTER_COMMIT"
	// EnvStopInActivity makes the worker stop inside the named activity,
	// after its side effect and before it returns.
	EnvStopInActivity = "CAIRN_CRASHTEST_STOP_IN_ACTIVITY"
	// EnvSlowActivity makes the named activity sleep EnvSlowFor after its
	// side effect.
	EnvSlowActivity = "CAIRN_CRASHTEST_SLOW_ACTIVITY"
	EnvSlowFor      = "CAIRN_CRASHTEST_SLOW_FOR"
)

// Lines a child prints on stdout for its parent.
const (
	Ready   = "READY"   // the worker runs
	Stopped = "STOPPED" // the worker reached its stop point and blocks
	Fenced  = "FENCED"  // a commit was rejected by the store
	Commit  = "COMMIT"  // a commit succeeded
	In      = "IN"      // "IN name": an activity started
)

// Where activities count their side effects, outside the worker process:
// a hash of activity name to executions, a hash of "name key" to
// executions with that idempotency key, and the number of charges made by
// charge, which honours its idempotency key.
const (
	EffectsKey = "crashtest:effects"
	KeysKey    = "crashtest:keys"
	ChargesKey = "crashtest:charges"
)

// behaviour says what the child's activities do besides their work.
type behaviour struct {
	say     func(string)
	stopIn  string
	stop    func()
	slow    string
	slowFor time.Duration
}

// Ship is the signal the order workflow waits for.
var Ship = durable.NewSignal[string]("ship")

// order is the workflow under test: two activities, a durable timer, a
// signal, and two more activities.
func order(rdb goredis.UniversalClient, b behaviour) *durable.Workflow[string, string] {
	act := func(name string) *durable.Activity[string, string] {
		return durable.NewActivity(name, func(ctx context.Context, in string) (string, error) {
			info, _ := durable.ActivityInfoFrom(ctx)
			b.say(In + " " + name)
			// The side effect, counted outside the process.
			pipe := rdb.TxPipeline()
			pipe.HIncrBy(ctx, EffectsKey, name, 1)
			pipe.HIncrBy(ctx, KeysKey, name+" "+info.IdempotencyKey, 1)
			if _, err := pipe.Exec(ctx); err != nil {
				return "", err
			}
			if name == "charge" {
				// Charges once per idempotency key, however often it runs.
				first, err := rdb.SetNX(ctx, "crashtest:charged:"+info.IdempotencyKey, 1, 0).Result()
				if err != nil {
					return "", err
				}
				if first {
					if err := rdb.IncrBy(ctx, ChargesKey, 1).Err(); err != nil {
						return "", err
					}
				}
			}
			if name == b.stopIn {
				b.stop()
			}
			if name == b.slow {
				time.Sleep(b.slowFor)
			}
			return name + "(" + in + ")", nil
		}, durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{InitialInterval: 10 * time.Millisecond}})
	}
	reserve, charge, pack, ship := act("reserve"), act("charge"), act("pack"), act("ship")
	return durable.NewWorkflow("order", func(ctx durable.Context, id string) (string, error) {
		r, err := durable.Execute(ctx, reserve, id)
		if err != nil {
			return "", err
		}
		c, err := durable.Execute(ctx, charge, r)
		if err != nil {
			return "", err
		}
		if err := durable.Sleep(ctx, 300*time.Millisecond); err != nil {
			return "", err
		}
		carrier, err := Ship.Receive(ctx)
		if err != nil {
			return "", err
		}
		p, err := durable.Execute(ctx, pack, c)
		if err != nil {
			return "", err
		}
		return durable.Execute(ctx, ship, p+" via "+carrier)
	})
}

// Child runs a worker process configured by the environment, until it is
// killed: of the order workflow, or of the clerk agent if EnvAgent is set
// (see AgentChild). It returns an error only if it cannot start.
func Child(out io.Writer) error {
	if os.Getenv(EnvAgent) != "" {
		return AgentChild(out)
	}
	if os.Getenv(EnvMemo) != "" {
		return MemoChild(out)
	}
	c, err := openChild(out)
	if err != nil {
		return err
	}
	block := func() {
		c.say(Stopped)
		select {} // until the parent kills the process
	}
	wrapped := &stopStore{Store: c.store, stopAfter: c.stopAfter, stop: block, say: c.say}
	slowFor, _ := time.ParseDuration(os.Getenv(EnvSlowFor))

	w := durable.NewWorker(wrapped, durable.WorkerOptions{LeaseTTL: c.lease, Logger: c.logger})
	w.Register(order(c.rdb, behaviour{say: c.say, stopIn: os.Getenv(EnvStopInActivity), stop: block,
		slow: os.Getenv(EnvSlowActivity), slowFor: slowFor}))
	c.say(Ready)
	return w.Run(context.Background())
}

// child is what every worker child process starts with: the store and a
// client of the server the parent gives (EnvURL), the lease time
// (EnvLease), the commit to stop after (EnvStopAfterCommit), and a way to
// tell the parent where it is.
type child struct {
	store     *redis.Store
	rdb       *goredis.Client
	lease     time.Duration
	stopAfter int
	say       func(line string)
	logger    *slog.Logger
}

func openChild(out io.Writer) (*child, error) {
	url := os.Getenv(EnvURL)
	lease, err := time.ParseDuration(os.Getenv(EnvLease))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvLease, err)
	}
	// Tasks taken by a worker that dies come back after a lease time, as
	// its runs do.
	store, err := redis.Open(url, redis.WithVisibilityTimeout(lease))
	if err != nil {
		return nil, err
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	c := &child{store: store, rdb: goredis.NewClient(opts), lease: lease,
		logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		say: func(line string) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintln(out, line)
		}}
	c.stopAfter, _ = strconv.Atoi(os.Getenv(EnvStopAfterCommit))
	return c, nil
}

// stopStore stops the process after its Nth successful commit and reports
// fenced commits.
type stopStore struct {
	backend.Store
	mu        sync.Mutex
	commits   int
	stopAfter int
	stop      func()
	say       func(string)
}

func (s *stopStore) Commit(ctx context.Context, c backend.Commit) error {
	err := s.Store.Commit(ctx, c)
	if errors.Is(err, backend.ErrFenced) || errors.Is(err, backend.ErrConflict) {
		s.say(Fenced)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.commits++
	n := s.commits
	s.mu.Unlock()
	s.say(fmt.Sprintf("%s %d", Commit, n))
	if n == s.stopAfter {
		s.stop()
	}
	return nil
}
