package agent_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/memstore"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/hashembed"
	"github.com/cairn-dev/cairn/providers/scripted"
)

func newLongTermMemory() *memory.Memory {
	return &memory.Memory{Store: memstore.New(), Embedder: hashembed.New(0)}
}

// TestLongTermToolsAcrossConversations: the model remembers a fact about
// a user in one run and recalls it in another; another user's runs do not
// see it; forget removes it.
func TestLongTermToolsAcrossConversations(t *testing.T) {
	mem := newLongTermMemory()
	rec, model := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		msg := lastUser(req)
		switch {
		case turn == 0 && strings.HasPrefix(msg, "remember:"):
			return toolTurn(call(agent.RememberTool, fmt.Sprintf(`{"text":%q}`, strings.TrimPrefix(msg, "remember:")))), nil
		case turn == 0 && strings.HasPrefix(msg, "recall:"):
			return toolTurn(call(agent.RecallTool, fmt.Sprintf(`{"query":%q}`, strings.TrimPrefix(msg, "recall:")))), nil
		case turn == 0 && strings.HasPrefix(msg, "forget:"):
			return toolTurn(call(agent.ForgetTool, fmt.Sprintf(`{"key":%q}`, strings.TrimPrefix(msg, "forget:")))), nil
		}
		return answer(req.Messages[len(req.Messages)-1].Content), nil
	})
	a := &agent.Agent{Name: "remembering", Model: model, LongTerm: &agent.LongTerm{Memory: mem, Tools: true}}
	e := newEnv(t, a)
	runAs := func(id, user, msg string) string {
		t.Helper()
		res := e.result(e.startRun(a, id, agent.Input{Message: msg, User: user}))
		e.replays(a, id)
		return res.Text
	}
	remembered := runAs("r1", "ana", "remember:The user prefers email over phone.")
	assert.Contains(t, remembered, `"remembered":"`)
	found := runAs("r2", "ana", "recall:how should we contact the user? email or phone")
	assert.Contains(t, found, "The user prefers email over phone.")
	assert.Contains(t, runAs("r3", "bob", "recall:email or phone"), `{"memories":[]}`, "another user's memories")

	items, err := mem.Store.List(ctxT(t), "user/ana", "", 0)
	require.NoError(t, err)
	require.Len(t, items, 1)
	assert.Contains(t, found, items[0].Key)
	runAs("r4", "ana", "forget:"+items[0].Key)
	items, err = mem.Store.List(ctxT(t), "user/ana", "", 0)
	require.NoError(t, err)
	assert.Empty(t, items)

	// The tools are offered to runs with a user only.
	names := toolNames(rec.request(t, 0).Tools)
	assert.Subset(t, names, []string{agent.RememberTool, agent.RecallTool, agent.ForgetTool})
	runAs("r5", "", "hello")
	assert.NotContains(t, toolNames(rec.request(t, 0).Tools), agent.RememberTool)
}

func toolNames(defs []providers.ToolDefinition) []string {
	var names []string
	for _, d := range defs {
		names = append(names, d.Name)
	}
	return names
}

// TestLongTermBadInputIsToldToTheModel: an oversized memory is refused
// with an error the model reads; nothing is stored; the run goes on.
func TestLongTermBadInputIsToldToTheModel(t *testing.T) {
	mem := newLongTermMemory()
	_, model := script(
		toolTurn(call(agent.RememberTool, fmt.Sprintf(`{"text":%q}`, strings.Repeat("x", memory.MaxTextBytes+1)))),
		answer("ok"),
	)
	a := &agent.Agent{Name: "oversized", Model: model, LongTerm: &agent.LongTerm{Memory: mem, Tools: true}}
	e := newEnv(t, a)
	res := e.result(e.startRun(a, "o1", agent.Input{Message: "remember this", User: "ana"}))
	assert.Contains(t, toolResult(t, res.Messages, "call_0_0"), "invalid item")
	items, err := mem.Store.List(ctxT(t), "user/ana", "", 0)
	require.NoError(t, err)
	assert.Empty(t, items)
}

// flakyStore fails the first Put after it has stored the item, as a
// worker that dies between the write and its journal would look.
type flakyStore struct {
	memory.Store
	mu     sync.Mutex
	failed bool
}

func (s *flakyStore) Put(ctx context.Context, item memory.Item) error {
	if err := s.Store.Put(ctx, item); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failed {
		s.failed = true
		return errors.New("connection reset")
	}
	return nil
}

// TestLongTermWriteRetriedLeavesOneMemory: a write whose first attempt
// had its effect but failed is retried, and leaves one memory.
func TestLongTermWriteRetriedLeavesOneMemory(t *testing.T) {
	store := &flakyStore{Store: memstore.New()}
	mem := &memory.Memory{Store: store, Embedder: hashembed.New(0)}
	_, model := script(toolTurn(call(agent.RememberTool, `{"text":"The user is vegetarian."}`)), answer("ok"))
	a := &agent.Agent{Name: "retried-write", Model: model, LongTerm: &agent.LongTerm{Memory: mem, Tools: true}}
	e := newEnv(t, a)
	res := e.result(e.startRun(a, "w1", agent.Input{Message: "note it", User: "ana"}))
	assert.Contains(t, toolResult(t, res.Messages, "call_0_0"), "remembered")
	assert.True(t, store.failed)
	items, err := store.List(ctxT(t), "user/ana", "", 0)
	require.NoError(t, err)
	assert.Len(t, items, 1)
}

// TestLongTermRecallAndExtraction: after an exchange, an extractor child
// run remembers a fact about the user, without the conversation waiting
// for it; the next conversation has it recalled into its context, from
// history on replay.
func TestLongTermRecallAndExtraction(t *testing.T) {
	mem := newLongTermMemory()
	extractor := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		if scripted.Turn(req) > 0 {
			return answer("done"), nil
		}
		if strings.Contains(req.Messages[0].Content, "I only read email") {
			return toolTurn(call(agent.RememberTool, `{"text":"The user prefers email."}`)), nil
		}
		return answer("done"), nil
	})
	rec, model := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		return answer("noted"), nil
	})
	a := &agent.Agent{Name: "support", Model: model,
		LongTerm: &agent.LongTerm{Memory: mem, Recall: 3, MinScore: 0.1, Extractor: extractor}}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "c1", agent.Input{Conversation: true, User: "ana"})
	r, err := say(ctx, e.rt, run.ID, "Hi, I only read email, never call me.")
	require.NoError(t, err)
	assert.Equal(t, "noted", r.Text)
	eventually(t, "the memory extracted", func() bool {
		items, err := mem.Store.List(ctx, "user/ana", "", 0)
		return err == nil && len(items) == 1
	})
	require.NoError(t, e.rt.End(ctx, run.ID))
	e.result(run)

	run2 := e.startRun(a, "c2", agent.Input{Message: "How will you contact me, by email?", User: "ana"})
	e.result(run2)
	sys := rec.request(t, 0).System
	assert.Contains(t, sys, "# What you remember about the user\n- The user prefers email. (memory ")
	e.replays(a, run2.ID)
	var recalls int
	for _, ev := range e.history(run2.ID) {
		if strings.HasPrefix(ev.Name, "recall:") {
			recalls++
		}
	}
	assert.NotZero(t, recalls, "the recall is journaled")
}

func TestLongTermUserIsValidated(t *testing.T) {
	a := &agent.Agent{Name: "checked", Model: scripted.New(), LongTerm: &agent.LongTerm{Memory: newLongTermMemory(), Tools: true}}
	e := newEnv(t, a)
	_, err := e.rt.Start(ctxT(t), a, "bad-user", agent.Input{Message: "hi", User: "ana smith"})
	assert.ErrorIs(t, err, memory.ErrInvalidNamespace)
}

func TestLongTermIsValidated(t *testing.T) {
	rt := agent.NewRuntime(newMemoryStore(), agent.Options{})
	err := rt.Register(&agent.Agent{Name: "no-store", Model: scripted.New(), LongTerm: &agent.LongTerm{}})
	assert.ErrorContains(t, err, "needs a Memory")
	err = rt.Register(&agent.Agent{Name: "clash", Model: scripted.New(), Tools: lookupTool(t),
		LongTerm: &agent.LongTerm{Memory: newLongTermMemory(), Tools: true}, WorkflowTools: []*agent.WorkflowTool{
			agent.MustNewWorkflowTool("recall", "x", func(durable.Context, struct{}) (string, error) { return "", nil })}})
	assert.ErrorContains(t, err, `"recall"`)
}
