package crashtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/memory"
	memredis "github.com/cairn-dev/cairn/memory/redis"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/hashembed"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// Environment variables that configure a memo worker child (besides
// EnvURL and EnvLease, which it reads too).
const (
	// EnvMemo makes a child run the memo agent.
	EnvMemo = "CAIRN_CRASHTEST_MEMO"
	// EnvStopInSummary makes the worker stop inside the summary call of
	// a compaction, after the call was counted.
	EnvStopInSummary = "CAIRN_CRASHTEST_STOP_IN_SUMMARY"
	// EnvStopAfterRemember makes the worker stop inside the remember
	// tool, right after the memory was stored and before the tool
	// returns.
	EnvStopAfterRemember = "CAIRN_CRASHTEST_STOP_AFTER_REMEMBER"
)

// The memo agent, its run's input, and where it counts its summary calls,
// outside the worker process. A memo run starts with a conversation of
// three exchanges, past its memory policy's MaxMessages, so that its first
// model call is preceded by a compaction; the model then remembers a fact
// about the user with the remember tool, and answers.
const (
	MemoName        = "memo"
	MemoUser        = "ana"
	MemoMessage     = "Remember that I am vegetarian."
	MemoFact        = "The user is vegetarian."
	SummaryCallsKey = "crashtest:memo:summaries"
	MemoSummary     = "Ana asked about her order, her address and her invoice."
)

// MemoHistory is the conversation a memo run starts from.
var MemoHistory = []providers.Message{
	{Role: providers.RoleUser, Content: "Where is my order?"},
	{Role: providers.RoleAssistant, Content: "It ships tomorrow."},
	{Role: providers.RoleUser, Content: "Please send it to my new address."},
	{Role: providers.RoleAssistant, Content: "Done."},
	{Role: providers.RoleUser, Content: "And the invoice?"},
	{Role: providers.RoleAssistant, Content: "It is in your inbox."},
}

// memoStops says where the memo's worker stops.
type memoStops struct {
	stop            func()
	inSummary       bool
	afterRemembered bool
}

// Memo returns the memo agent as the test process defines it, to start
// its runs and replay their histories, with its memories in rdb.
func Memo(rdb goredis.UniversalClient) *agent.Agent {
	return memo(rdb, memoStops{stop: func() {}})
}

// MemoMemories is the long-term store of the memo agent, in rdb.
func MemoMemories(rdb goredis.UniversalClient) memory.Store {
	return memredis.New(rdb, memredis.Options{})
}

func memo(rdb goredis.UniversalClient, s memoStops) *agent.Agent {
	var store memory.Store = MemoMemories(rdb)
	if s.afterRemembered {
		store = stopAfterPut{Store: store, stop: s.stop}
	}
	summarizer := scripted.Func(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		if err := rdb.Incr(ctx, SummaryCallsKey).Err(); err != nil {
			return providers.Response{}, err
		}
		if s.inSummary {
			s.stop()
		}
		return providers.Response{Message: providers.Message{Content: MemoSummary}}, nil
	})
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		last := req.Messages[len(req.Messages)-1]
		if last.Role == providers.RoleUser {
			return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{
				Name: agent.RememberTool, Arguments: fmt.Sprintf(`{"text":%q}`, MemoFact)}}}}, nil
		}
		summarized := strings.Contains(req.System, MemoSummary)
		return providers.Response{Message: providers.Message{
			Content: fmt.Sprintf("noted (%s; summary seen: %t)", last.Content, summarized)}}, nil
	})
	return &agent.Agent{
		Name:         MemoName,
		Model:        model,
		Memory:       &memory.Policy{MaxMessages: 6, Summarizer: summarizer},
		LongTerm:     &agent.LongTerm{Memory: &memory.Memory{Store: store, Embedder: hashembed.New(0)}, Tools: true},
		ModelOptions: durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{InitialInterval: 10 * time.Millisecond}},
	}
}

// stopAfterPut is a memory store that stops the process once a Put has
// stored its item.
type stopAfterPut struct {
	memory.Store
	stop func()
}

func (s stopAfterPut) Put(ctx context.Context, item memory.Item) error {
	if err := s.Store.Put(ctx, item); err != nil {
		return err
	}
	s.stop()
	return nil
}

// MemoChild runs a worker process of the memo agent configured by the
// environment, until it is killed.
func MemoChild(out io.Writer) error {
	c, err := openChild(out)
	if err != nil {
		return err
	}
	stops := memoStops{
		stop: func() {
			c.say(Stopped)
			_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
			select {}
		},
		inSummary:       os.Getenv(EnvStopInSummary) != "",
		afterRemembered: os.Getenv(EnvStopAfterRemember) != "",
	}
	rt := agent.NewRuntime(c.store, agent.Options{Logger: c.logger})
	if err := rt.Register(memo(c.rdb, stops)); err != nil {
		return err
	}
	w := rt.NewWorker(durable.WorkerOptions{LeaseTTL: c.lease})
	c.say(Ready)
	return w.Run(context.Background())
}
