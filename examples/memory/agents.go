package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// newAssistant is the support assistant: it recalls what it remembers
// about the customer at each exchange, and an extractor remembers what is
// worth keeping after each one.
func newAssistant(mem *memory.Memory) *agent.Agent {
	return &agent.Agent{
		Name:         "support",
		Instructions: "You are a shop's support assistant. Be brief.",
		Model:        scripted.Func(assistantModel),
		LongTerm: &agent.LongTerm{
			Memory:    mem,
			Recall:    3,
			MinScore:  0.05,
			Extractor: scripted.Func(extractorModel),
		},
	}
}

// assistantModel stands in for a real model: it answers from what its
// system instructions say it remembers.
func assistantModel(_ context.Context, req providers.Request) (providers.Response, error) {
	last := req.Messages[len(req.Messages)-1].Content
	prefersEmail := strings.Contains(req.System, "wants to be contacted by email")
	switch {
	case strings.Contains(last, "email"):
		return reply("Noted: email only, never the phone."), nil
	case strings.Contains(last, "ships") && prefersEmail:
		return reply("Sorry about A-17. I will email you the moment it ships, as you prefer."), nil
	case strings.Contains(last, "ships"):
		return reply("Sorry about A-17. Shall I call you or email you when it ships?"), nil
	}
	return reply("You're welcome!"), nil
}

// extractorModel stands in for the extractor's model: it remembers a
// contact preference when an exchange states one.
func extractorModel(_ context.Context, req providers.Request) (providers.Response, error) {
	if scripted.Turn(req) == 0 && strings.Contains(req.Messages[0].Content, "user: ") &&
		strings.Contains(req.Messages[0].Content, "only ever contact me by email") {
		return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{
			Name: agent.RememberTool, Arguments: `{"text":"The user wants to be contacted by email only, never by phone."}`}}}}, nil
	}
	return reply("done"), nil
}

func reply(text string) providers.Response {
	return providers.Response{Message: providers.Message{Content: text}}
}

// chatterAgent is an agent for the long conversation, and what its model
// was sent.
type chatterAgent struct {
	agent *agent.Agent

	mu       sync.Mutex
	policy   *memory.Policy
	prompts  []int    // prompt tokens of each exchange's model call
	systems  []string // system instructions of each
	nSummary int
}

// newChatter returns a chatter, with the memory policy if one is given.
func newChatter(name string, policy *memory.Policy) *chatterAgent {
	c := &chatterAgent{policy: policy}
	c.agent = &agent.Agent{Name: name, Instructions: "You are a friendly companion. Answer in a sentence.",
		Model: scripted.Func(c.model), Memory: policy, ConversationLimit: 20}
	return c
}

// model answers each message, and writes summaries when asked to: the
// previous summary, then the topics of the new messages.
func (c *chatterAgent) model(_ context.Context, req providers.Request) (providers.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.HasPrefix(req.System, memory.DefaultInstructions) {
		c.nSummary++
		return reply(summarize(req.Messages[0].Content)), nil
	}
	// The model reports the prompt's tokens as memory.Approx counts
	// them, as a provider reports its own count.
	tokens := (&memory.Policy{}).Count(req)
	c.prompts = append(c.prompts, tokens)
	c.systems = append(c.systems, req.System)
	last := req.Messages[len(req.Messages)-1].Content
	_, about, _ := strings.Cut(last, "about ")
	topic, _, _ := strings.Cut(about, ".")
	resp := reply(fmt.Sprintf("How lovely to hear about %s! Tell me more.", topic))
	resp.Usage.InputTokens = tokens
	return resp, nil
}

// summarize writes a summary from a summary request: the previous
// summary's topics and the new messages' topics, each with how often the
// user talked about it, so that it does not grow with the conversation.
func summarize(body string) string {
	counts := map[string]int{}
	var order []string
	add := func(topic string, n int) {
		if _, ok := counts[topic]; !ok {
			order = append(order, topic)
		}
		counts[topic] += n
	}
	current, _, _ := strings.Cut(strings.TrimPrefix(body, "# Current summary\n"), "\n")
	if rest, ok := strings.CutPrefix(current, "The user talked about "); ok {
		for _, part := range strings.Split(strings.TrimSuffix(rest, "."), ", ") {
			var n int
			topic, count, _ := strings.Cut(strings.TrimSuffix(part, ")"), " (")
			if _, err := fmt.Sscan(count, &n); err == nil {
				add(topic, n)
			}
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if text, ok := strings.CutPrefix(line, "user: "); ok {
			if i := strings.Index(text, "about "); i >= 0 {
				topic, _, _ := strings.Cut(text[i+len("about "):], ".")
				add(topic, 1)
			}
		}
	}
	parts := make([]string, len(order))
	for i, t := range order {
		parts[i] = fmt.Sprintf("%s (%d)", t, counts[t])
	}
	return "The user talked about " + strings.Join(parts, ", ") + "."
}

// prompt returns the prompt tokens of exchange n (from 1).
func (c *chatterAgent) prompt(n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prompts[n-1]
}

func (c *chatterAgent) summaries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nSummary
}

// lastSummary is the summary in the last prompt.
func (c *chatterAgent) lastSummary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, summary, _ := strings.Cut(c.systems[len(c.systems)-1], "# Summary of the earlier conversation\n")
	return summary
}
