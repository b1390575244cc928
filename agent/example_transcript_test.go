package agent_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// A conversation whose model sees only its last messages, and whose
// history starts afresh every two exchanges, still has its whole
// transcript: the messages it dropped are in the run's archive.
func ExampleRuntime_Transcript() {
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	rt := agent.NewRuntime(inmem.New(), agent.Options{})
	echo := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		last := req.Messages[len(req.Messages)-1]
		return providers.Response{Message: providers.Message{Content: "You said " + last.Content}}, nil
	})
	chat := &agent.Agent{Name: "chat", Model: echo, ConversationLimit: 2,
		Memory: &memory.Policy{MaxMessages: 4, NoSummary: true}}
	if err := rt.Register(chat); err != nil {
		log.Fatal(err)
	}
	go rt.NewWorker(durable.WorkerOptions{}).Run(ctx)
	run, err := rt.Start(ctx, chat, "chat-1", agent.Input{Conversation: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, text := range []string{"one", "two", "three", "four", "five"} {
		id, err := rt.Send(ctx, run.ID, text)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := rt.Reply(ctx, run.ID, id); err != nil {
			log.Fatal(err)
		}
	}
	info, err := run.Describe(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("generation", info.Generation)

	messages, err := rt.Transcript(ctx, run.ID)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range messages {
		fmt.Printf("%s: %s\n", m.Role, m.Content)
	}
	// Output:
	// generation 2
	// user: one
	// assistant: You said one
	// user: two
	// assistant: You said two
	// user: three
	// assistant: You said three
	// user: four
	// assistant: You said four
	// user: five
	// assistant: You said five
}
