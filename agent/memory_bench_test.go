package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// benchPolicy is the memory policy of the benchmarks: a budget of 2,000
// tokens, as memory.Approx counts them.
var benchPolicy = memory.Policy{MaxTokens: 2000, SummaryTokens: 300}

// promptLog is a model for long conversations that keeps the prompt size
// of every answer it gives, and writes summaries of a bounded size.
type promptLog struct {
	mu      sync.Mutex
	prompts []int
}

func (p *promptLog) model() providers.Model {
	return scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		tokens := (&memory.Policy{}).Count(req)
		if strings.HasPrefix(req.System, memory.DefaultInstructions) {
			// A summary of about 200 tokens, whatever it summarises.
			return answer("The user told stories. " + strings.Repeat("Details. ", 70)), nil
		}
		p.mu.Lock()
		p.prompts = append(p.prompts, tokens)
		p.mu.Unlock()
		resp := answer("That is interesting; tell me more about it, please.")
		resp.Usage.InputTokens = tokens
		return resp, nil
	})
}

// converseFor has a conversation of n exchanges of about 60 tokens each
// way, and returns the prompt size of each exchange.
func converseFor(b *testing.B, store backend.Store, policy *memory.Policy, n int) []int {
	log := &promptLog{}
	name := "long-" + strconv.FormatBool(policy != nil)
	a := &agent.Agent{Name: name, Model: log.model(), Memory: policy}
	rt := agent.NewRuntime(store, agent.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := rt.Register(a); err != nil {
		b.Fatal(err)
	}
	// The worker stops when the conversation ends, so that a benchmark's
	// iterations do not pile workers up: each holds blocking reads, and
	// with them connections of the store's pool, until it stops.
	w := rt.NewWorker(durable.WorkerOptions{Logger: slog.New(slog.DiscardHandler)})
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	defer func() { stop(); <-done }()
	ctx := context.Background()
	run, err := rt.Start(ctx, a, fmt.Sprintf("%s-%d", name, benchRunIDs.Add(1)), agent.Input{Conversation: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := say(ctx, rt, run.ID, fmt.Sprintf("Story %d: %s", i, strings.Repeat("and then something happened ", 8))); err != nil {
			b.Fatal(err)
		}
	}
	if err := rt.End(ctx, run.ID); err != nil {
		b.Fatal(err)
	}
	if _, err := run.Result(ctx); err != nil {
		b.Fatal(err)
	}
	return log.prompts
}

// BenchmarkConversationPromptTokens reports the prompt tokens of the model
// call at exchanges 10, 100 and 1,000 of a conversation (in memory), with
// the benchmark memory policy and without any. The time per op is that of
// a whole 1,000-exchange conversation. Run with -benchtime=1x.
func BenchmarkConversationPromptTokens(b *testing.B) {
	for _, policy := range []*memory.Policy{nil, &benchPolicy} {
		b.Run(map[bool]string{true: "none", false: "policy"}[policy == nil], func(b *testing.B) {
			var prompts []int
			for b.Loop() {
				prompts = converseFor(b, inmem.New(), policy, 1000)
			}
			for _, at := range []int{10, 100, 1000} {
				b.ReportMetric(float64(prompts[at-1]), fmt.Sprintf("tokens@%d", at))
			}
		})
	}
}

// BenchmarkConversationRedisBytes reports the Redis memory a conversation
// of 200 exchanges leaves, per exchange, with the benchmark memory policy
// and without any, on a private redis-server or on the one
// CAIRN_BENCH_REDIS_URL names (then the other clients' writes count too):
// used_memory after, less before (bytes/exchange), which counts memory
// that is no key's too, and the MEMORY USAGE of the run's keys
// (key-bytes/exchange), less the streams of the watches that waited for
// replies, which expire seconds after. Run with -benchtime=1x.
func BenchmarkConversationRedisBytes(b *testing.B) {
	for _, policy := range []*memory.Policy{nil, &benchPolicy} {
		b.Run(map[bool]string{true: "none", false: "policy"}[policy == nil], func(b *testing.B) {
			const exchanges = 200
			target := redistest.ForBench(b)
			rdb := target.Client()
			used := func() int64 {
				info, err := rdb.Info(context.Background(), "memory").Result()
				if err != nil {
					b.Fatal(err)
				}
				for _, line := range strings.Split(info, "\r\n") {
					if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
						n, _ := strconv.ParseInt(v, 10, 64)
						return n
					}
				}
				b.Fatal("no used_memory in INFO")
				return 0
			}
			store, err := redis.Open(target.URL, redis.WithLogger(slog.New(slog.DiscardHandler)), redis.WithPrefix(target.Prefix))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { store.Close() })
			// keys is the MEMORY USAGE of the runs' keys, but the watches'.
			keys := func() int64 {
				ctx := context.Background()
				var total int64
				iter := rdb.Scan(ctx, 0, redis.DefaultPrefix+":{r:*", 100).Iterator()
				for iter.Next(ctx) {
					if k := iter.Val(); !strings.HasSuffix(k, ":changes") && !strings.HasSuffix(k, ":commits") {
						total += rdb.MemoryUsage(ctx, k, 0).Val()
					}
				}
				if err := iter.Err(); err != nil {
					b.Fatal(err)
				}
				return total
			}
			var perExchange, keysPerExchange float64
			for b.Loop() {
				before, keysBefore := used(), keys()
				converseFor(b, store, policy, exchanges)
				perExchange = float64(used()-before) / exchanges
				keysPerExchange = float64(keys()-keysBefore) / exchanges
			}
			b.ReportMetric(perExchange, "bytes/exchange")
			b.ReportMetric(keysPerExchange, "key-bytes/exchange")
		})
	}
}
