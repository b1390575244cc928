package crashtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// Environment variables that configure an agent worker child (besides
// EnvURL, EnvLease and EnvStopAfterCommit, which it reads too, and the
// standard OTEL_EXPORTER_OTLP_* variables: with OTEL_EXPORTER_OTLP_ENDPOINT
// set, it sends its spans there, each as it ends).
const (
	// EnvAgent makes a child run the clerk agent instead of the order
	// workflow.
	EnvAgent = "CAIRN_CRASHTEST_AGENT"
	// EnvStopInModel makes the worker stop inside the model call of the
	// given turn (0, 1, ...), after the call was counted.
	EnvStopInModel = "CAIRN_CRASHTEST_STOP_IN_MODEL"
	// EnvStopInTool makes the worker stop inside the named tool, after
	// its side effect and before it returns.
	EnvStopInTool = "CAIRN_CRASHTEST_STOP_IN_TOOL"
	// EnvStallStream makes the model call of the given turn stall after
	// it streamed its first words: the stream's goroutine blocks (and
	// the child prints Streaming) while the rest of the worker goes on,
	// so that what was streamed reaches the run's live feed.
	EnvStallStream = "CAIRN_CRASHTEST_STALL_STREAM"
	// EnvStopAfterTimer makes the worker stop right after the commit that
	// starts a durable timer: the run waits, its worker is stuck.
	EnvStopAfterTimer = "CAIRN_CRASHTEST_STOP_AFTER_TIMER"
	// EnvExportEvery makes a traced worker batch its spans, as the
	// README recommends, instead of sending each as it ends: they go out
	// when the worker flushes them, at this interval (a Go duration; see
	// durable.Tracing.ExportInterval, which a third of the lease caps),
	// or when a batch of 512 fills. From an hour up, its flushes fail, so
	// that a kill loses every span it emitted.
	EnvExportEvery = "CAIRN_CRASHTEST_EXPORT_EVERY"
)

// The clerk agent, and where it counts what it does, outside the worker
// process: model calls by turn, tool executions by tool, tool executions
// by "tool idempotency-key", and side effects by tool. A tool that honours
// its idempotency key (charge, refund) has its effect once per key however
// often it runs; one that does not (notify) has it at every execution.
const (
	ClerkName      = "clerk"
	ClerkMessage   = "Charge order o-1, then refund the shipping."
	ModelCallsKey  = "crashtest:agent:model"
	ToolRunsKey    = "crashtest:agent:runs"
	ToolKeysKey    = "crashtest:agent:keys"
	ToolEffectsKey = "crashtest:agent:effects"
	// WaitMillis is how long the clerk's durable wait lasts.
	WaitMillis = 300
)

// Events is what an agent child prints before each commit: "EVENTS
// status type/step ...", the run's status and the events to commit.
const Events = "EVENTS"

// Streaming is what a child prints when its model call stalls in the
// middle of streaming (EnvStallStream).
const Streaming = "STREAMING"

// stallWords is how many words the stalled stream delivers.
const stallWords = 3

// InModel is what a child prints when it stops in a model call: "IN
// model N" for turn N.
const InModel = In + " model"

// countEffect counts an execution of a tool (ARGV[1]) with an idempotency
// key (ARGV[2]), and its side effect: if the tool honours the key
// (ARGV[3]), only the first time the key (KEYS[4]) is seen.
var countEffect = goredis.NewScript(`
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
if ARGV[3] ~= 'true' or redis.call('SET', KEYS[4], 1, 'NX') then
	redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
end
return 1
`)

// clerkStops says where the clerk's worker stops and how it talks.
type clerkStops struct {
	say     func(string)
	stop    func()
	inModel int    // turn, or -1
	inTool  string // tool name, or ""
	stall   int    // turn whose stream stalls, or -1
}

type amountArgs struct {
	Amount int `json:"amount"`
}

type textArgs struct {
	Text string `json:"text"`
}

type waitArgs struct {
	Millis int `json:"millis"`
}

// Clerk returns the clerk agent as the test process defines it: to start
// its runs and replay their histories. Its model and tools count into rdb
// if they are ever called.
func Clerk(rdb goredis.UniversalClient) *agent.Agent {
	return clerk(rdb, clerkStops{say: func(string) {}, stop: func() {}, inModel: -1, stall: -1})
}

// clerk is an agent of four turns:
//
//	turn 0: charge 42 and notify, in parallel (activity tools)
//	turn 1: wait WaitMillis (a workflow tool that sleeps durably)
//	turn 2: refund 5 (an activity tool that needs approval)
//	turn 3: the final answer, which quotes every tool result
//
// charge and refund honour their idempotency key; notify does not. Tool
// results include the idempotency key, so a final answer equal to an
// uninterrupted run's also says the keys were the same.
func clerk(rdb goredis.UniversalClient, s clerkStops) *agent.Agent {
	// effect counts one execution of tool name, and its side effect:
	// once per idempotency key if the tool honours it, else every time.
	effect := func(ctx context.Context, name string, honours bool) (string, error) {
		key, ok := tools.IdempotencyKey(ctx)
		if !ok {
			return "", fmt.Errorf("%s: no idempotency key", name)
		}
		// One script, so that a kill cannot split the counts.
		err := countEffect.Run(ctx, rdb, []string{ToolRunsKey, ToolKeysKey, ToolEffectsKey, "crashtest:agent:done:" + key},
			name, name+" "+key, strconv.FormatBool(honours)).Err()
		if err != nil {
			return "", err
		}
		if name == s.inTool {
			s.stop()
		}
		return key, nil
	}
	charge := tools.MustNew("charge", "charge the customer", func(ctx context.Context, in amountArgs) (string, error) {
		key, err := effect(ctx, "charge", true)
		return fmt.Sprintf("charged %d (key %s)", in.Amount, key), err
	}, tools.HonorsIdempotencyKey(), tools.Retry(durable.RetryPolicy{InitialInterval: 10 * time.Millisecond}))
	notify := tools.MustNew("notify", "tell the customer", func(ctx context.Context, in textArgs) (string, error) {
		key, err := effect(ctx, "notify", false)
		return fmt.Sprintf("notified %q (key %s)", in.Text, key), err
	}, tools.Retry(durable.RetryPolicy{InitialInterval: 10 * time.Millisecond}))
	refund := tools.MustNew("refund", "refund the customer", func(ctx context.Context, in amountArgs) (string, error) {
		key, err := effect(ctx, "refund", true)
		return fmt.Sprintf("refunded %d (key %s)", in.Amount, key), err
	}, tools.HonorsIdempotencyKey(), tools.RequireApproval(), tools.Retry(durable.RetryPolicy{InitialInterval: 10 * time.Millisecond}))
	set, err := tools.NewSet(charge, notify, refund)
	if err != nil {
		panic(err)
	}
	wait := agent.MustNewWorkflowTool("wait", "wait a while", func(ctx durable.Context, in waitArgs) (string, error) {
		if err := durable.Sleep(ctx, time.Duration(in.Millis)*time.Millisecond); err != nil {
			return "", err
		}
		return fmt.Sprintf("waited %dms", in.Millis), nil
	})
	calls := func(cs ...providers.ToolCall) (providers.Response, error) {
		return providers.Response{Message: providers.Message{ToolCalls: cs}}, nil
	}
	model := scripted.Func(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		turn := scripted.Turn(req)
		if err := rdb.HIncrBy(ctx, ModelCallsKey, strconv.Itoa(turn), 1).Err(); err != nil {
			return providers.Response{}, err
		}
		if turn == s.inModel {
			s.say(fmt.Sprintf("%s %d", InModel, turn))
			s.stop()
		}
		switch turn {
		case 0:
			return calls(providers.ToolCall{Name: "charge", Arguments: `{"amount":42}`},
				providers.ToolCall{Name: "notify", Arguments: `{"text":"charging 42"}`})
		case 1:
			return calls(providers.ToolCall{Name: "wait", Arguments: fmt.Sprintf(`{"millis":%d}`, WaitMillis)})
		case 2:
			return calls(providers.ToolCall{Name: "refund", Arguments: `{"amount":5}`})
		case 3:
			var results []string
			for _, m := range req.Messages {
				if m.Role == providers.RoleTool {
					results = append(results, m.ToolCallID+": "+m.Content)
				}
			}
			return providers.Response{Message: providers.Message{Content: "done; " + strings.Join(results, "; ")}}, nil
		}
		return providers.Response{}, durable.NonRetryable(fmt.Errorf("clerk: no turn %d", turn))
	})
	var m providers.Model = model
	if s.stall >= 0 {
		m = stallingModel{Model: model, turn: s.stall, say: s.say}
	}
	return &agent.Agent{
		Name:          ClerkName,
		Instructions:  "Charge, wait, refund, report.",
		Model:         m,
		Tools:         set,
		WorkflowTools: []*agent.WorkflowTool{wait},
		MaxTurns:      6,
		ModelOptions:  durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{InitialInterval: 10 * time.Millisecond}},
	}
}

// stallingModel is a scripted model whose answer to one turn stalls
// after stallWords words were streamed.
type stallingModel struct {
	*scripted.Model
	turn int
	say  func(string)
}

func (m stallingModel) Stream(ctx context.Context, req providers.Request, fn func(providers.Delta) error) (providers.Response, error) {
	if scripted.Turn(req) != m.turn {
		return m.Model.Stream(ctx, req, fn)
	}
	words := 0
	return m.Model.Stream(ctx, req, func(d providers.Delta) error {
		if err := fn(d); err != nil {
			return err
		}
		if d.Text != "" {
			if words++; words == stallWords {
				m.say(Streaming)
				select {} // until the parent kills the process
			}
		}
		return nil
	})
}

// AgentChild runs a worker process of the clerk agent configured by the
// environment, until it is killed. It returns an error only if it cannot
// start.
func AgentChild(out io.Writer) error {
	c, err := openChild(out)
	if err != nil {
		return err
	}
	say := c.say
	var exportEvery time.Duration
	if every := os.Getenv(EnvExportEvery); every != "" {
		if exportEvery, err = time.ParseDuration(every); err != nil {
			return fmt.Errorf("%s: %w", EnvExportEvery, err)
		}
	}
	block := func() {
		if exportEvery < time.Second {
			// A worker that batches its spans often has flushed and
			// marked them by the time it dies.
			time.Sleep(3 * exportEvery)
		}
		say(Stopped)
		// Freeze the whole process, not only this goroutine: the rest
		// of the worker must not go on (take the run again after a
		// commit that released it, finish a tool running in parallel)
		// before the parent's SIGKILL lands.
		_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
		select {} // until the parent kills the process
	}
	stops := clerkStops{say: say, stop: block, inModel: -1, inTool: os.Getenv(EnvStopInTool), stall: -1}
	for env, turn := range map[string]*int{EnvStopInModel: &stops.inModel, EnvStallStream: &stops.stall} {
		if v := os.Getenv(env); v != "" {
			if *turn, err = strconv.Atoi(v); err != nil {
				return fmt.Errorf("%s: %w", env, err)
			}
		}
	}
	var wrapped backend.Store = &timerStopStore{
		stopStore: &stopStore{Store: c.store, stopAfter: c.stopAfter, stop: block, say: say},
		stop:      os.Getenv(EnvStopAfterTimer) != "",
	}
	// Keep the live feed (the model call streams, as in production) and
	// the span export marks.
	wrapped = feedStore{Store: wrapped, Feed: c.store, ExportMarker: c.store}
	rtOpts := agent.Options{Logger: c.logger}
	wOpts := durable.WorkerOptions{LeaseTTL: c.lease}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" {
		exp, err := otlptracehttp.New(context.Background())
		if err != nil {
			return err
		}
		// Spans go out as they end, so that what a worker reported
		// before it was killed has arrived; or in batches, which a kill
		// loses and the heir sends again.
		export := sdktrace.WithSyncer(exp)
		if exportEvery > 0 {
			export = sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Hour))
			wOpts.Tracing = &durable.Tracing{ExportInterval: exportEvery}
		}
		tp := sdktrace.NewTracerProvider(export, sdktrace.WithIDGenerator(durable.IDGenerator{}))
		rtOpts.TracerProvider = tp
		if exportEvery >= time.Hour {
			rtOpts.TracerProvider = noFlush{tp}
		}
	}
	rt := agent.NewRuntime(wrapped, rtOpts)
	if err := rt.Register(clerk(c.rdb, stops)); err != nil {
		return err
	}
	w := rt.NewWorker(wOpts)
	say(Ready)
	return w.Run(context.Background())
}

// timerStopStore is a stopStore that can also stop the process right
// after the commit that starts a durable timer.
type timerStopStore struct {
	*stopStore
	stop bool
}

func (s *timerStopStore) Commit(ctx context.Context, c backend.Commit) error {
	types := make([]string, 0, len(c.Events))
	timer := false
	for _, data := range c.Events {
		e, err := backend.DecodeEvent(data, nil)
		if err != nil {
			return errors.Join(errors.New("crashtest: decode an event to commit"), err)
		}
		types = append(types, fmt.Sprintf("%s/%d", e.Type, e.Step))
		timer = timer || e.Type == backend.EventTimerStarted
	}
	// Said before the commit, so that it comes before the commit's
	// number (and the stop) in the output.
	s.say(fmt.Sprintf("%s %s %s", Events, c.Run.Status, strings.Join(types, " ")))
	if err := s.stopStore.Commit(ctx, c); err != nil {
		return err
	}
	if s.stop && timer {
		s.stopStore.stop()
	}
	return nil
}

// feedStore is a store with the live feed and the span export marks of
// another.
type feedStore struct {
	backend.Store
	backend.Feed
	backend.ExportMarker
}

// noFlush is a TracerProvider whose flushes fail without exporting: its
// spans stay in their batch until the process dies.
type noFlush struct{ *sdktrace.TracerProvider }

func (noFlush) ForceFlush(context.Context) error { return errors.New("crashtest: flushes fail") }
