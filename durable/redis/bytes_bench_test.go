package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
)

// runBytes is what a run costs in Redis: the MEMORY USAGE of each of its
// keys (those with its hash tag), by the key's last part ("run",
// "history", ...), and their sum; and the payload, the bytes of the data
// they hold (the record's fields and values, the history's events, the
// inbox's entries), by key, and its sum.
type runBytes struct {
	keys, payloads map[string]int64
	total, payload int64
}

// measureRun reads what the run's keys cost. It finds them with SCAN, as
// someone inspecting a deployment would.
func measureRun(ctx context.Context, rdb *goredis.Client, store *redis.Store, prefix, runID string) (runBytes, error) {
	tag := prefix + ":{r:" + runID + "}:"
	var keys []string
	iter := rdb.Scan(ctx, 0, tag+"*", 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return runBytes{}, err
	}
	out := runBytes{keys: map[string]int64{}, payloads: map[string]int64{}}
	for _, key := range keys {
		// SAMPLES 0: every element, not an estimate.
		n, err := rdb.MemoryUsage(ctx, key, 0).Result()
		if err != nil {
			return runBytes{}, fmt.Errorf("memory usage %s: %w", key, err)
		}
		out.keys[strings.TrimPrefix(key, tag)] = n
		out.total += n
	}
	record, err := rdb.HGetAll(ctx, tag+"run").Result()
	if err != nil {
		return runBytes{}, err
	}
	for k, v := range record {
		out.payloads["run"] += int64(len(k) + len(v))
	}
	history, err := store.ReadHistory(ctx, runID, 1)
	if err != nil {
		return runBytes{}, err
	}
	for _, e := range history {
		out.payloads["history"] += int64(len(e))
	}
	inbox, err := store.ReadInbox(ctx, runID)
	if err != nil {
		return runBytes{}, err
	}
	for _, e := range inbox {
		out.payloads["inbox"] += int64(len(e.Event))
	}
	for _, n := range out.payloads {
		out.payload += n
	}
	return out, nil
}

// String lists the keys, largest first, each with its payload.
func (r runBytes) String() string {
	names := slices.Collect(func(yield func(string) bool) {
		for k := range r.keys {
			if !yield(k) {
				return
			}
		}
	})
	slices.SortFunc(names, func(a, b string) int { return int(r.keys[b] - r.keys[a]) })
	var b strings.Builder
	fmt.Fprintf(&b, "%d B in %d keys (payload %d B):", r.total, len(r.keys), r.payload)
	for _, k := range names {
		fmt.Fprintf(&b, " %s %d (payload %d)", k, r.keys[k], r.payloads[k])
	}
	return b.String()
}

var (
	// benchSleeper waits on a durable timer for an hour.
	benchSleeper = durable.NewWorkflow("sleeper", func(ctx durable.Context, _ int) (int, error) {
		return 0, durable.Sleep(ctx, time.Hour)
	})
	benchApprove = durable.NewSignal[bool]("approve")
	// benchApproval proposes something (an activity), then waits for a
	// person to approve it, publishing the request, as an agent's tool
	// call that needs approval does.
	benchApproval = durable.NewWorkflow("approval", func(ctx durable.Context, n int) (int, error) {
		proposal, err := durable.Execute(ctx, benchNoop, n)
		if err != nil {
			return 0, err
		}
		durable.SetWaitingStatus(ctx, backend.StatusAwaitingApproval)
		request := map[string]any{"kind": "approval", "agent": "refunder", "turn": 1, "call_id": "call_0_1", "tool": "refund",
			"arguments": `{"order":"A1","amount":20}`, "requested_at": durable.Now(ctx)}
		if err := durable.SetAwaiting(ctx, []any{request}); err != nil {
			return 0, err
		}
		if ok, err := benchApprove.Receive(ctx); err != nil || !ok {
			return 0, err
		}
		return proposal, nil
	})
)

// BenchmarkRunBytes reports what a run costs in Redis (MEMORY USAGE of
// all its keys) in three states: waiting on a timer (B/run-waiting), done
// after 10 no-op steps (B/run-done10), and awaiting approval after one
// step (B/run-approval); and the payload of each, the bytes of the data
// its keys hold (payload-B/...). The breakdown by key is logged (-v).
// Each iteration measures 20 runs of each kind, and reports the median.
func BenchmarkRunBytes(b *testing.B) {
	store, _, target := benchStore(b)
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: slog.New(slog.DiscardHandler)})
	w.Register(benchSteps)
	w.Register(benchSleeper)
	w.Register(benchApproval)
	runWorker(b, w)
	client := durable.NewClient(store, durable.ClientOptions{})
	ctx := context.Background()
	const runs = 20

	measure := func(kind string, i int, start func(id string) error, until func(backend.RunInfo) bool) (runBytes, runBytes) {
		b.Helper()
		ids := make([]string, runs)
		for j := range ids {
			ids[j] = fmt.Sprintf("%s-%d-%d", kind, i, j)
			if err := start(ids[j]); err != nil {
				b.Fatal(err)
			}
		}
		var all []runBytes
		for _, id := range ids {
			// Polled, not watched: a watched run has a stream more while
			// it is watched (see WatchRun), which is not what a run costs.
			for {
				info, err := client.Describe(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				if until(info) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			m, err := measureRun(ctx, target.Client(), store, target.Prefix, id)
			if err != nil {
				b.Fatal(err)
			}
			all = append(all, m)
		}
		slices.SortFunc(all, func(x, y runBytes) int { return int(x.total - y.total) })
		med := all[len(all)/2]
		slices.SortFunc(all, func(x, y runBytes) int { return int(x.payload - y.payload) })
		return med, all[len(all)/2]
	}
	var waiting, done, approval, pWaiting, pDone, pApproval float64
	for i := range b.N {
		m, p := measure("waiting", i, func(id string) error {
			_, err := benchSleeper.Start(ctx, client, id, 0)
			return err
		}, func(info backend.RunInfo) bool { return info.Status == backend.StatusWaiting })
		b.Logf("waiting on a timer: %v", m)
		waiting, pWaiting = waiting+float64(m.total), pWaiting+float64(p.payload)

		m, p = measure("done", i, func(id string) error {
			_, err := benchSteps.Start(ctx, client, id, 10)
			return err
		}, func(info backend.RunInfo) bool { return info.Status.Terminal() })
		b.Logf("done after 10 steps: %v", m)
		done, pDone = done+float64(m.total), pDone+float64(p.payload)

		m, p = measure("approval", i, func(id string) error {
			_, err := benchApproval.Start(ctx, client, id, 0)
			return err
		}, func(info backend.RunInfo) bool { return info.Status == backend.StatusAwaitingApproval })
		b.Logf("awaiting approval: %v", m)
		approval, pApproval = approval+float64(m.total), pApproval+float64(p.payload)
	}
	n := float64(b.N)
	b.ReportMetric(waiting/n, "B/run-waiting")
	b.ReportMetric(done/n, "B/run-done10")
	b.ReportMetric(approval/n, "B/run-approval")
	b.ReportMetric(pWaiting/n, "payload-B/run-waiting")
	b.ReportMetric(pDone/n, "payload-B/run-done10")
	b.ReportMetric(pApproval/n, "payload-B/run-approval")
}
