package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// bench runs the measurements on one redis-server.
type bench struct {
	cfg     config
	url     string
	private bool            // the server is cairnbench's own
	rdb     *goredis.Client // for INFO, SCAN and MEMORY USAGE
}

// warmUp is the number of runs per worker process run before each
// measurement, so that connections are open and scripts loaded.
const warmUp = 10

// sleepFor is how long the waiting runs sleep: longer than any
// measurement.
const sleepFor = time.Hour

func (b *bench) connect(ctx context.Context) error {
	opts, err := goredis.ParseURL(b.url)
	if err != nil {
		return fmt.Errorf("redis URL: %w", err)
	}
	b.rdb = goredis.NewClient(opts)
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		b.rdb.Close()
		return fmt.Errorf("redis %s: %w", opts.Addr, err)
	}
	return nil
}

// store is a fresh key space for one measurement: its prefix, and a
// client of the runs under it on a connection pool of its own.
type store struct {
	prefix string
	client *durable.Client
	close  func()
}

// newStore returns a fresh key space: on the private server the default
// prefix, emptied first; on a shared server a random prefix. Its close
// deletes the prefix's keys.
func (b *bench) newStore(ctx context.Context) (*store, error) {
	prefix := redis.DefaultPrefix
	if !b.private {
		var r [4]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, err
		}
		prefix = "cairnbench-" + hex.EncodeToString(r[:])
	}
	if err := redistest.DeleteKeys(ctx, b.rdb, prefix); err != nil {
		return nil, fmt.Errorf("delete the keys of prefix %s: %w", prefix, err)
	}
	rdb := goredis.NewClient(b.rdb.Options())
	rs := redis.New(rdb, redis.WithPrefix(prefix), redis.WithLogger(slog.New(slog.DiscardHandler)))
	return &store{prefix: prefix, client: durable.NewClient(rs, durable.ClientOptions{}), close: func() {
		rs.Close()
		rdb.Close()
		// Not ctx: the keys go even when the measurement was cut short.
		if err := redistest.DeleteKeys(context.Background(), b.rdb, prefix); err != nil {
			slog.Warn("cairnbench: delete the keys of prefix", "prefix", prefix, "err", err)
		}
	}}, nil
}

// startWorkers starts n worker processes on the store with prefix. If
// profile is set, and -profile, each writes a CPU profile to the
// -profile directory, in a file whose name begins with profile.
func (b *bench) startWorkers(prefix string, n int, profile string) ([]*workerProc, error) {
	var procs []*workerProc
	for i := range n {
		var file string
		if profile != "" && b.cfg.profileDir != "" {
			file = filepath.Join(b.cfg.profileDir, fmt.Sprintf("%s-%d.prof", profile, i+1))
		}
		w, err := startWorker(b.url, prefix, b.cfg.maxRuns, file)
		if err != nil {
			stopWorkers(procs)
			return nil, err
		}
		procs = append(procs, w)
	}
	return procs, nil
}

// stopWorkers stops the worker processes, all at once.
func stopWorkers(procs []*workerProc) {
	var wg sync.WaitGroup
	for _, w := range procs {
		wg.Go(w.stop)
	}
	wg.Wait()
}

// workersCPU returns the CPU time the worker processes have used, in all.
func workersCPU(procs []*workerProc) (time.Duration, error) {
	var total time.Duration
	for _, w := range procs {
		cpu, err := w.cpu()
		if err != nil {
			return 0, err
		}
		total += cpu
	}
	return total, nil
}

// usage is a snapshot of the counters a measurement takes differences of.
type usage struct {
	at                    time.Time
	workers, redis, local time.Duration // CPU
	memory                int64         // used_memory
	shared                keyBytes
}

// before takes the snapshot before a measurement: the memory first, then
// the time and the CPU counters, so that the scan of the keys falls
// outside the measurement.
func (b *bench) before(ctx context.Context, procs []*workerProc, prefix string) (usage, error) {
	var u usage
	if err := b.memory(ctx, &u, prefix); err != nil {
		return u, err
	}
	err := b.cpu(ctx, &u, procs)
	u.at = time.Now()
	return u, err
}

// after takes the snapshot after a measurement: the time and the CPU
// counters first, then the memory.
func (b *bench) after(ctx context.Context, procs []*workerProc, prefix string) (usage, error) {
	var u usage
	if err := b.cpu(ctx, &u, procs); err != nil {
		return u, err
	}
	err := b.memory(ctx, &u, prefix)
	return u, err
}

func (b *bench) memory(ctx context.Context, u *usage, prefix string) error {
	var err error
	if u.shared, err = sharedKeyBytes(ctx, b.rdb, prefix); err != nil {
		return err
	}
	u.memory, err = usedMemory(ctx, b.rdb)
	return err
}

// cpu takes the time, then the CPU counters.
func (b *bench) cpu(ctx context.Context, u *usage, procs []*workerProc) error {
	first := time.Now()
	var err error
	if u.workers, err = workersCPU(procs); err != nil {
		return err
	}
	if u.redis, err = serverCPU(ctx, b.rdb); err != nil {
		return err
	}
	if u.local, err = cpuTime(); err != nil {
		return err
	}
	u.at = first
	return nil
}

// throughput measures round's runs with n worker processes.
func (b *bench) throughput(ctx context.Context, round, n int) (throughput, error) {
	t := throughput{Round: round, Workers: n}
	s, err := b.newStore(ctx)
	if err != nil {
		return t, err
	}
	defer s.close()
	procs, err := b.startWorkers(s.prefix, n, fmt.Sprintf("round%d-workers%d", round, n))
	if err != nil {
		return t, err
	}
	defer stopWorkers(procs)

	if _, err := b.complete(ctx, s.client, runIDs(1, warmUp*n)); err != nil {
		return t, fmt.Errorf("warm up: %w", err)
	}
	ids := runIDs(2, b.cfg.runs)
	before, err := b.before(ctx, procs, s.prefix)
	if err != nil {
		return t, err
	}
	startedIn, err := b.complete(ctx, s.client, ids)
	if err != nil {
		return t, err
	}
	after, err := b.after(ctx, procs, s.prefix)
	if err != nil {
		return t, err
	}
	stepCount := float64(b.cfg.runs * b.cfg.steps)
	elapsed := after.at.Sub(before.at)
	t.Seconds = elapsed.Seconds()
	t.StartSeconds = startedIn.Seconds()
	t.StepsPerSec = stepCount / elapsed.Seconds()
	t.WorkerCPU = micros(after.workers-before.workers) / stepCount
	t.RedisCPU = micros(after.redis-before.redis) / stepCount
	t.ClientCPU = micros(after.local-before.local) / stepCount
	t.Bytes, err = b.bytesPerRun(ctx, s.prefix, ids, before, after)
	return t, err
}

// waitingRuns measures the Redis bytes of runs waiting on a timer, with
// one worker process.
func (b *bench) waitingRuns(ctx context.Context, round int) (waiting, error) {
	w := waiting{Round: round}
	s, err := b.newStore(ctx)
	if err != nil {
		return w, err
	}
	defer s.close()
	procs, err := b.startWorkers(s.prefix, 1, "")
	if err != nil {
		return w, err
	}
	defer stopWorkers(procs)
	if _, err := b.complete(ctx, s.client, runIDs(1, warmUp)); err != nil {
		return w, fmt.Errorf("warm up: %w", err)
	}
	ids := runIDs(3, b.cfg.waiting)
	before, err := b.before(ctx, procs, s.prefix)
	if err != nil {
		return w, err
	}
	if _, err := startAll(ctx, s.client, sleeper, ids, sleepFor, b.cfg.starters); err != nil {
		return w, err
	}
	// Setup, not a measured time: polling is good enough.
	for {
		list, err := s.client.ListRuns(ctx, backend.RunFilter{Status: backend.StatusWaiting, Workflow: sleeper.Name()})
		if err != nil {
			return w, err
		}
		if len(list) == len(ids) {
			break
		}
		select {
		case <-ctx.Done():
			return w, fmt.Errorf("%d of %d runs wait on their timer: %w", len(list), len(ids), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	after, err := b.after(ctx, procs, s.prefix)
	if err != nil {
		return w, err
	}
	w.Bytes, err = b.bytesPerRun(ctx, s.prefix, ids, before, after)
	return w, err
}

// complete starts the runs of steps ids and waits for their results, one
// after the other in the order they were started. It returns how long
// starting them all took.
func (b *bench) complete(ctx context.Context, c *durable.Client, ids []string) (time.Duration, error) {
	start := time.Now()
	runs, err := startAll(ctx, c, steps, ids, b.cfg.steps, b.cfg.starters)
	if err != nil {
		return 0, err
	}
	startedIn := time.Since(start)
	for _, r := range runs {
		if _, err := r.Result(ctx); err != nil {
			return 0, fmt.Errorf("run %s: %w", r.ID, err)
		}
	}
	return startedIn, nil
}

// startAll starts runs of wf with ids and input in, from starters
// goroutines, and returns them in the order of ids.
func startAll[In, Out any](ctx context.Context, c *durable.Client, wf *durable.Workflow[In, Out], ids []string, in In, starters int) ([]*durable.Run[Out], error) {
	runs := make([]*durable.Run[Out], len(ids))
	errs := make([]error, starters)
	var wg sync.WaitGroup
	for g := range starters {
		wg.Go(func() {
			for i := g; i < len(ids); i += starters {
				r, err := wf.Start(ctx, c, ids[i], in)
				if err != nil {
					errs[g] = fmt.Errorf("start run %s: %w", ids[i], err)
					return
				}
				runs[i] = r
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err // the others are likely the same
		}
	}
	return runs, nil
}

// runIDs returns n run ids of 16 hex digits, as long as the engine's own,
// different for each batch.
func runIDs(batch, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x%08x", batch, i)
	}
	return ids
}

// bytesPerRun measures the Redis bytes per run of ids, whose keys were
// written between before and after.
func (b *bench) bytesPerRun(ctx context.Context, prefix string, ids []string, before, after usage) (bytesPerRun, error) {
	n := min(b.cfg.sample, len(ids))
	sample := make([]string, n)
	for i := range sample {
		sample[i] = ids[i*len(ids)/n]
	}
	kb, err := runKeyBytes(ctx, b.rdb, prefix, sample)
	if err != nil {
		return bytesPerRun{}, err
	}
	runs := float64(len(ids))
	out := bytesPerRun{
		Sampled:    n,
		RunKeys:    float64(kb.Bytes) / float64(n),
		KeysPerRun: float64(kb.Keys) / float64(n),
		ByKey:      map[string]float64{},
		Shared:     float64(after.shared.Bytes-before.shared.Bytes) / runs,
		UsedMemory: float64(after.memory-before.memory) / runs,
	}
	for kind, bytes := range kb.ByKind {
		out.ByKey[kind] = float64(bytes) / float64(n)
	}
	return out, nil
}
