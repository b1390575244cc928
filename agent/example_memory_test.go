package agent_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/memstore"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/hashembed"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// rememberingModel plays the model's part: it remembers what the user
// asks it to, and answers from what its instructions say it remembers.
func rememberingModel() providers.Model {
	return scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		last := req.Messages[len(req.Messages)-1]
		switch {
		case last.Role == providers.RoleUser && strings.HasPrefix(last.Content, "Remember"):
			return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{
				Name: agent.RememberTool, Arguments: `{"text":"The user's dog is called Rex."}`}}}}, nil
		case strings.Contains(req.System, "dog is called Rex"):
			return providers.Response{Message: providers.Message{Content: "Your dog is Rex."}}, nil
		}
		return providers.Response{Message: providers.Message{Content: "Noted."}}, nil
	})
}

// An assistant with a bounded context and a long-term memory of each
// user: what it is told to remember in one run, it knows in the next.
func Example_memory() {
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	rt := agent.NewRuntime(inmem.New(), agent.Options{})

	// snippet:memory
	memories := &memory.Memory{
		Store:    memstore.New(),   // memory/redis in production: it runs on any Redis 7 or Redis Cluster
		Embedder: hashembed.New(0), // openai.NewEmbedder("text-embedding-3-small") for real meaning
	}
	assistant := &agent.Agent{
		Name:  "assistant",
		Model: rememberingModel(),
		// What the model sees: at most 8,000 tokens; older messages are
		// folded into a running summary by a journaled model call.
		Memory: &memory.Policy{MaxTokens: 8000},
		// What it remembers of each user (Input.User) across runs: tools
		// to remember, recall and forget, and the 3 memories closest to
		// each message put in its instructions.
		LongTerm: &agent.LongTerm{Memory: memories, Tools: true, Recall: 3},
	}
	// end snippet:memory
	if err := rt.Register(assistant); err != nil {
		log.Fatal(err)
	}
	go rt.NewWorker(durable.WorkerOptions{}).Run(ctx)
	for i, msg := range []string{"Remember that my dog is called Rex.", "What is my dog's name?"} {
		run, err := rt.Start(ctx, assistant, fmt.Sprintf("chat-%d", i), agent.Input{Message: msg, User: "ana"})
		if err != nil {
			log.Fatal(err)
		}
		res, err := run.Result(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(res.Text)
	}
	// Output:
	// Noted.
	// Your dog is Rex.
}
