// Memory shows an agent that remembers: a support assistant that learns a
// customer's preference in one conversation and uses it in the next, and a
// long conversation whose prompt stays bounded because older exchanges are
// compacted into a summary.
//
// Part 1: in a first conversation the customer says how they want to be
// contacted. After the exchange, an extractor (a child run the
// conversation does not wait for) remembers it in the customer's
// namespace of a long-term memory store. In a second conversation, days
// later as far as the agent can tell, the memory is recalled into the
// model's context and the assistant acts on it.
//
// Part 2: a conversation of 60 exchanges, once without a memory policy and
// once with one (a budget of 1,000 tokens). Without, the prompt grows with
// every exchange; with, it stays under the budget: the oldest exchanges
// are folded into a running summary by a model call that is journaled like
// any other, and the conversation continues as new every 20 exchanges,
// carrying the summary and the recent messages, not the transcript.
//
//	go run ./examples/memory                  # no setup: in-memory stores, scripted models
//	go run ./examples/memory -redis redis://localhost:6379/0
//
// The models are scripted and the embedder hashes words (providers/hashembed),
// so the example needs no API key and prints the same every time. With
// -redis, runs and memories are kept in Redis (durable/redis and
// memory/redis); run ids are random, so every run of the example starts
// afresh.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/memstore"
	memredis "github.com/cairn-dev/cairn/memory/redis"
	"github.com/cairn-dev/cairn/providers/hashembed"
)

func main() {
	redisURL := flag.String("redis", "", "a Redis URL to keep runs and memories in; default: in memory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := mainErr(ctx, os.Stdout, *redisURL); err != nil {
		fmt.Fprintln(os.Stderr, "memory:", err)
		os.Exit(1)
	}
}

// stores are where runs and memories are kept.
type stores struct {
	runs     backend.Store
	memories memory.Store
	close    func()
}

// openStores opens Redis if a URL is given, or else memory, which needs
// no setup but forgets everything on exit.
func openStores(redisURL string) (stores, error) {
	if redisURL == "" {
		return stores{runs: inmem.New(), memories: memstore.New(), close: func() {}}, nil
	}
	runs, err := redis.Open(redisURL)
	if err != nil {
		return stores{}, err
	}
	opts, err := goredis.ParseURL(redisURL)
	if err != nil {
		runs.Close()
		return stores{}, err
	}
	rdb := goredis.NewClient(opts)
	// memory/redis needs no Redis module, and runs on Redis Cluster too.
	memories := memredis.New(rdb, memredis.Options{})
	return stores{runs: runs, memories: memories, close: func() { rdb.Close(); runs.Close() }}, nil
}

func mainErr(ctx context.Context, w io.Writer, redisURL string) error {
	s, err := openStores(redisURL)
	if err != nil {
		return err
	}
	defer s.close()
	return run(ctx, w, s, redisURL != "")
}

// run runs both parts of the example. Run ids are random when the stores
// outlive the process, so that each run of the example starts afresh.
func run(ctx context.Context, w io.Writer, s stores, fresh bool) error {
	suffix := ""
	if fresh {
		var b [4]byte
		_, _ = rand.Read(b[:])
		suffix = "-" + hex.EncodeToString(b[:])
	}
	mem := &memory.Memory{Store: s.memories, Embedder: hashembed.New(0)}
	assistant := newAssistant(mem)
	long := newChatter("chatter", nil)
	bounded := newChatter("bounded", &memory.Policy{MaxTokens: 1000, SummaryTokens: 200})

	rt := agent.NewRuntime(s.runs, agent.Options{})
	if err := rt.Register(assistant, long.agent, bounded.agent); err != nil {
		return err
	}
	worker := rt.NewWorker(durable.WorkerOptions{})
	workerCtx, stopWorker := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- worker.Run(workerCtx) }()
	defer func() {
		stopWorker()
		<-done
	}()

	user := "ana" + suffix
	fmt.Fprintln(w, "Part 1: a preference learned in one conversation, used in the next")
	if err := converse(ctx, w, rt, assistant, "support-1"+suffix, user,
		"Hi! Please only ever contact me by email, I never pick up the phone.", "Thanks, that's all."); err != nil {
		return err
	}
	// The extractor runs beside the conversation: wait for its memory.
	items, err := waitForMemories(ctx, s.memories, "user/"+user)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nWhat the assistant remembers about", user+":")
	for _, it := range items {
		fmt.Fprintf(w, "  - %s\n", it.Text)
	}
	fmt.Fprintln(w)
	if err := converse(ctx, w, rt, assistant, "support-2"+suffix, user,
		"My order A-17 is late. Can I be contacted when it ships?"); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nPart 2: prompt tokens per exchange of a 60-exchange conversation")
	if err := chatter(ctx, rt, long, "chatter-1"+suffix); err != nil {
		return err
	}
	if err := chatter(ctx, rt, bounded, "bounded-1"+suffix); err != nil {
		return err
	}
	fmt.Fprintf(w, "%-10s %16s %26s\n", "exchange", "no policy", "policy (budget 1,000)")
	for _, n := range []int{1, 10, 20, 30, 40, 50, 60} {
		fmt.Fprintf(w, "%-10d %16d %26d\n", n, long.prompt(n), bounded.prompt(n))
	}
	info, err := rt.Run("bounded-1" + suffix).Describe(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nWith the policy: %d summaries written, %d generations (continue-as-new every 20 exchanges).\n",
		bounded.summaries(), info.Generation+1)
	fmt.Fprintf(w, "The summary the model saw at the last exchange:\n  %s\n", bounded.lastSummary())
	return nil
}

// converse has a conversation with the assistant as user, printing it.
func converse(ctx context.Context, w io.Writer, rt *agent.Runtime, a *agent.Agent, runID, user string, messages ...string) error {
	run, err := rt.Start(ctx, a, runID, agent.Input{Conversation: true, User: user})
	if err != nil {
		return err
	}
	for _, m := range messages {
		fmt.Fprintf(w, "%s: %s\n", user, m)
		id, err := rt.Send(ctx, run.ID, m)
		if err != nil {
			return err
		}
		reply, err := rt.Reply(ctx, run.ID, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "assistant: %s\n", reply.Text)
	}
	if err := rt.End(ctx, run.ID); err != nil {
		return err
	}
	_, err = run.Result(ctx)
	return err
}

// waitForMemories waits until the namespace holds a memory.
func waitForMemories(ctx context.Context, store memory.Store, ns string) ([]memory.Item, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		items, err := store.List(ctx, ns, "", 0)
		if err != nil || len(items) > 0 {
			return items, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no memory extracted: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// chatter has a conversation of 60 exchanges with a chatter agent.
func chatter(ctx context.Context, rt *agent.Runtime, c *chatterAgent, runID string) error {
	run, err := rt.Start(ctx, c.agent, runID, agent.Input{Conversation: true, User: "ben"})
	if err != nil {
		return err
	}
	for i := 1; i <= 60; i++ {
		id, err := rt.Send(ctx, run.ID, chatterMessage(i))
		if err != nil {
			return err
		}
		if _, err := rt.Reply(ctx, run.ID, id); err != nil {
			return err
		}
	}
	if err := rt.End(ctx, run.ID); err != nil {
		return err
	}
	_, err = run.Result(ctx)
	return err
}

// chatterMessage is the i-th message of the long conversation.
func chatterMessage(i int) string {
	topics := []string{"my garden", "the weather", "a book I read", "my commute", "dinner plans"}
	return fmt.Sprintf("Message %d: let me tell you about %s. %s", i, topics[i%len(topics)],
		strings.Repeat("It was quite something, really. ", 4))
}
