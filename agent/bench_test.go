package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// The agent benchmarks measure the brief's target "a durable agent loop
// with a scripted model costs under 1 ms per turn more than the same loop
// without durability". Each iteration is one complete run of 10 turns (10
// model calls): 9 tool turns of 3 parallel tool calls, then a final
// answer; 37 activities in all. They report, with b.ReportMetric:
//
//	us/turn        the loop's time per turn
//	plain-us/turn  the plain loop (no durability) per turn, measured in
//	               the same benchmark function just before (calibration)
//	us-extra/turn  us/turn - plain-us/turn: what durability costs a turn
//	x-plain        us/turn / plain-us/turn
//	rtt/turn       Redis round trips of the worker per turn (go-redis hook)
//	rtt/step       the same per activity (37 per run)
//	us/rtt         one raw Redis round trip (PING, median of 2,000)
//	redis-cpu-us/turn  CPU time of redis-server per turn (INFO cpu), all
//	               clients included
//
// The durable benchmarks have two variants: feed, the runtime as it is,
// publishing text deltas and tool events to the run's live feed; and
// nofeed, the runtime on a store that hides backend.Feed, to show what the
// live events cost apart.
//
// Run them with: go test ./agent -run XXX -bench Agent -benchtime 20x -count 3

const (
	benchToolTurns = 9
	benchCalls     = 3
	benchTurns     = benchToolTurns + 1
	benchSteps     = benchTurns + benchToolTurns*benchCalls
	// benchCalibration is the number of plain runs timed to get the
	// baseline of a durable benchmark.
	benchCalibration = 200
)

type benchArgs struct {
	Key string `json:"key"`
}

// benchAgent is an agent whose scripted model asks for 3 cheap tool calls
// a turn for 9 turns, then answers.
func benchAgent(b *testing.B) *agent.Agent {
	b.Helper()
	lookup := tools.MustNew("lookup", "look a key up", func(ctx context.Context, in benchArgs) (string, error) {
		return "value of " + in.Key, nil
	})
	set, err := tools.NewSet(lookup)
	if err != nil {
		b.Fatal(err)
	}
	var script []providers.Response
	for turn := range benchToolTurns {
		var calls []providers.ToolCall
		for i := range benchCalls {
			calls = append(calls, providers.ToolCall{Name: "lookup", Arguments: fmt.Sprintf(`{"key":"k%d-%d"}`, turn, i)})
		}
		script = append(script, providers.Response{Message: providers.Message{Content: fmt.Sprintf("Looking up batch %d.", turn), ToolCalls: calls}})
	}
	script = append(script, providers.Response{Message: providers.Message{Content: "All keys looked up, here is the summary."}})
	return &agent.Agent{Name: "bencher", Instructions: "Look keys up.", Model: scripted.New(script...), Tools: set, MaxTurns: benchTurns}
}

// benchPlain runs a's loop without durability: the model is called with
// the conversation so far, the tool calls of a turn run in parallel on
// goroutines, and their results are appended in the model's order, as the
// durable loop does.
func benchPlain(ctx context.Context, a *agent.Agent, message string) (agent.RunResult, error) {
	messages := []providers.Message{{Role: providers.RoleUser, Content: message}}
	var usage providers.Usage
	for turn := range a.MaxTurns {
		req := providers.Request{System: a.Instructions, Messages: messages, Settings: a.Settings}
		for _, d := range a.Tools.Definitions() {
			req.Tools = append(req.Tools, providers.ToolDefinition{Name: d.Name, Description: d.Description, Parameters: d.Parameters})
		}
		resp, err := a.Model.Generate(ctx, req)
		if err != nil {
			return agent.RunResult{}, err
		}
		usage.InputTokens += resp.Usage.InputTokens
		usage.OutputTokens += resp.Usage.OutputTokens
		usage.TotalTokens += resp.Usage.TotalTokens
		msg := resp.Message
		msg.Role = providers.RoleAssistant
		messages = append(messages, msg)
		if len(msg.ToolCalls) == 0 {
			return agent.RunResult{Text: msg.Content, Agent: a.Name, Messages: messages, Turns: turn + 1, Usage: usage}, nil
		}
		results := make([]tools.Result, len(msg.ToolCalls))
		var wg sync.WaitGroup
		for i, c := range msg.ToolCalls {
			wg.Go(func() {
				t, ok := a.Tools.Lookup(c.Name)
				if !ok {
					results[i] = tools.Result{Content: "unknown tool " + c.Name, IsError: true}
					return
				}
				res, err := t.Call(ctx, json.RawMessage(c.Arguments))
				if err != nil {
					res = tools.Result{Content: err.Error(), IsError: true}
				}
				results[i] = res
			})
		}
		wg.Wait()
		for i, c := range msg.ToolCalls {
			messages = append(messages, providers.Message{Role: providers.RoleTool, ToolCallID: c.ID, Content: results[i].Content})
		}
	}
	return agent.RunResult{}, agent.ErrMaxTurns
}

// benchPlainPerRun times benchCalibration plain runs, after a warm-up,
// and returns their mean.
func benchPlainPerRun(b *testing.B, a *agent.Agent) time.Duration {
	b.Helper()
	ctx := context.Background()
	for range 10 {
		if _, err := benchPlain(ctx, a, "go"); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	for range benchCalibration {
		if _, err := benchPlain(ctx, a, "go"); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / benchCalibration
}

// benchCheck fails the benchmark if a run did not have the expected shape,
// or if its conversation is not the plain loop's.
func benchCheck(b *testing.B, a *agent.Agent, res agent.RunResult) {
	b.Helper()
	plain, err := benchPlain(context.Background(), a, "go")
	if err != nil {
		b.Fatal(err)
	}
	if res.Turns != benchTurns || len(res.Messages) != 1+benchTurns+benchToolTurns*benchCalls {
		b.Fatalf("run of %d turns and %d messages, want %d and %d", res.Turns, len(res.Messages),
			benchTurns, 1+benchTurns+benchToolTurns*benchCalls)
	}
	key := func(ms []providers.Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%s|%s|%s|%d", m.Role, m.Content, m.ToolCallID, len(m.ToolCalls)))
		}
		return out
	}
	if got, want := key(res.Messages), key(plain.Messages); !slices.Equal(got, want) {
		b.Fatalf("durable and plain conversations differ:\n%q\n%q", got, want)
	}
}

var benchRunIDs atomic.Int64

// benchNoFeed is a store without the backend.Feed capability: a runtime on
// it publishes no live events. It keeps backend.Watcher, so that waiting
// for a result blocks on the store as it does on the store it wraps.
type benchNoFeed struct {
	backend.Store
	backend.Watcher
}

func benchHideFeed(s interface {
	backend.Store
	backend.Watcher
}) backend.Store {
	return benchNoFeed{Store: s, Watcher: s}
}

// benchWorker runs a worker of rt until the benchmark ends.
func benchWorker(b *testing.B, rt *agent.Runtime) {
	w := rt.NewWorker(durable.WorkerOptions{Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
}

// benchDurable runs the durable benchmark loop, a worker being under way:
// starter is the runtime that starts runs and waits for them; trips, if
// set, counts the worker's Redis round trips, and rtt is a raw one.
// serverCPU, if set, tells the CPU time redis-server has used.
func benchDurable(b *testing.B, a *agent.Agent, starter *agent.Runtime, trips *atomic.Int64, rtt time.Duration,
	serverCPU func() time.Duration) {
	ctx := context.Background()
	runOnce := func() agent.RunResult {
		run, err := starter.Start(ctx, a, fmt.Sprintf("bench-%d", benchRunIDs.Add(1)), agent.Input{Message: "go"})
		if err != nil {
			b.Fatal(err)
		}
		res, err := run.Result(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	// Warm up (connections, scripts loaded) and check the run's shape.
	for range 3 {
		benchCheck(b, a, runOnce())
	}
	plain := benchPlainPerRun(b, a)

	var elapsed, cpu time.Duration
	var n, counted int64
	for b.Loop() {
		var cpuBefore time.Duration
		if serverCPU != nil {
			cpuBefore = serverCPU()
		}
		var before int64
		if trips != nil {
			before = trips.Load()
		}
		start := time.Now()
		runOnce()
		elapsed += time.Since(start)
		if trips != nil {
			counted += trips.Load() - before
		}
		if serverCPU != nil {
			cpu += serverCPU() - cpuBefore
		}
		n++
	}
	perTurn := float64(elapsed) / float64(n*benchTurns) / 1e3
	plainPerTurn := float64(plain) / benchTurns / 1e3
	b.ReportMetric(perTurn, "us/turn")
	b.ReportMetric(plainPerTurn, "plain-us/turn")
	b.ReportMetric(perTurn-plainPerTurn, "us-extra/turn")
	b.ReportMetric(perTurn/plainPerTurn, "x-plain")
	if trips != nil {
		b.ReportMetric(float64(counted)/float64(n*benchTurns), "rtt/turn")
		b.ReportMetric(float64(counted)/float64(n*benchSteps), "rtt/step")
		b.ReportMetric(float64(rtt)/1e3, "us/rtt")
	}
	if serverCPU != nil {
		b.ReportMetric(float64(cpu)/float64(n*benchTurns)/1e3, "redis-cpu-us/turn")
	}
}

// BenchmarkAgentPlain is the loop without durability.
func BenchmarkAgentPlain(b *testing.B) {
	a := benchAgent(b)
	ctx := context.Background()
	res, err := benchPlain(ctx, a, "go")
	if err != nil {
		b.Fatal(err)
	}
	benchCheck(b, a, res)
	var n int64
	for b.Loop() {
		if _, err := benchPlain(ctx, a, "go"); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed())/float64(n*benchTurns)/1e3, "us/turn")
}

// BenchmarkAgentDurableMemory is the durable loop on the in-memory store.
func BenchmarkAgentDurableMemory(b *testing.B) {
	for _, feed := range []bool{true, false} {
		b.Run(map[bool]string{true: "feed", false: "nofeed"}[feed], func(b *testing.B) {
			a := benchAgent(b)
			mem := inmem.New()
			var store backend.Store = mem
			if !feed {
				store = benchHideFeed(mem)
			}
			rt := agent.NewRuntime(store, agent.Options{Logger: slog.New(slog.DiscardHandler)})
			if err := rt.Register(a); err != nil {
				b.Fatal(err)
			}
			benchWorker(b, rt)
			benchDurable(b, a, rt, nil, 0, nil)
		})
	}
}

// BenchmarkAgentDurableRedis is the durable loop on Redis, a private
// redis-server on loopback, or the one CAIRN_BENCH_REDIS_URL names
// (redistest.ForBench: a key prefix of its own, deleted at the end; its
// redis-cpu-us/turn then counts the server's other clients too). The
// worker's store has a client of its own, whose round trips a hook counts;
// runs are started and waited for through another store and client, not
// counted.
func BenchmarkAgentDurableRedis(b *testing.B) {
	for _, feed := range []bool{true, false} {
		b.Run(map[bool]string{true: "feed", false: "nofeed"}[feed], func(b *testing.B) {
			a := benchAgent(b)
			target := redistest.ForBench(b)
			quiet := slog.New(slog.DiscardHandler)

			rs, err := redis.Open(target.URL, redis.WithLogger(quiet), redis.WithPrefix(target.Prefix))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { rs.Close() })
			trips := &benchRoundTrips{}
			rs.Client().AddHook(trips)
			var store backend.Store = rs
			if !feed {
				store = benchHideFeed(rs)
			}
			rt := agent.NewRuntime(store, agent.Options{Logger: quiet})
			if err := rt.Register(a); err != nil {
				b.Fatal(err)
			}
			benchWorker(b, rt)

			cs, err := redis.Open(target.URL, redis.WithLogger(quiet), redis.WithPrefix(target.Prefix))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { cs.Close() })
			starter := agent.NewRuntime(cs, agent.Options{Logger: quiet})

			benchDurable(b, a, starter, &trips.n, benchPing(b, target.Client()), func() time.Duration {
				return benchServerCPU(b, target.Client())
			})
		})
	}
}

// benchPing measures one raw Redis round trip (PING), median of 2,000.
func benchPing(b *testing.B, rdb *goredis.Client) time.Duration {
	ctx := context.Background()
	times := make([]time.Duration, 2000)
	for i := range times {
		start := time.Now()
		if err := rdb.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		times[i] = time.Since(start)
	}
	slices.Sort(times)
	return times[len(times)/2]
}

// benchServerCPU returns the CPU time, system and user, that the Redis
// server of rdb has used.
func benchServerCPU(b *testing.B, rdb *goredis.Client) time.Duration {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for line := range strings.Lines(info) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), ":")
		if name == "used_cpu_sys" || name == "used_cpu_user" {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				b.Fatalf("INFO cpu: %s: %v", line, err)
			}
			total += v
		}
	}
	return time.Duration(total * float64(time.Second))
}

// benchRoundTrips is a go-redis hook that counts round trips: a command,
// or a pipeline, is one.
type benchRoundTrips struct{ n atomic.Int64 }

func (c *benchRoundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *benchRoundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *benchRoundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// BenchmarkAgentTracing is the durable loop on the in-memory store without
// a live feed, with no-op telemetry providers and with the OpenTelemetry
// SDK (spans batched to an exporter that drops them, metrics aggregated
// for a reader): what tracing costs a turn.
func BenchmarkAgentTracing(b *testing.B) {
	for _, traced := range []bool{false, true} {
		b.Run(map[bool]string{false: "noop", true: "sdk"}[traced], func(b *testing.B) {
			a := benchAgent(b)
			opts := agent.Options{Logger: slog.New(slog.DiscardHandler),
				TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}
			if traced {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
					sdktrace.WithIDGenerator(durable.IDGenerator{}))
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				opts.TracerProvider = tp
				opts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			}
			rt := agent.NewRuntime(benchHideFeed(inmem.New()), opts)
			if err := rt.Register(a); err != nil {
				b.Fatal(err)
			}
			benchWorker(b, rt)
			benchDurable(b, a, rt, nil, 0, nil)
		})
	}
}
