package agent_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// memoryModel is a model for conversations under a memory policy. It
// answers summary requests with summarize, and other requests by calling
// the tool lookup once when the user says "look up", then answering with
// the user's last message. It refuses, as a provider would, a request
// with a tool result whose call is not in it, keeps every request, and
// reports the input tokens as memory.Approx counts them.
type memoryModel struct {
	mu        sync.Mutex
	requests  []providers.Request
	summaries []providers.Request
	summarize func(req providers.Request) (string, error)
}

func (m *memoryModel) model() *scripted.Model {
	return scripted.Func(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if strings.HasPrefix(req.System, memory.DefaultInstructions) {
			m.summaries = append(m.summaries, req)
			text, err := m.summarize(req)
			return answer(text), err
		}
		m.requests = append(m.requests, req)
		called := map[string]bool{}
		for _, msg := range req.Messages {
			for _, c := range msg.ToolCalls {
				called[c.ID] = true
			}
			if msg.Role == providers.RoleTool && !called[msg.ToolCallID] {
				return providers.Response{}, durable.NonRetryable(fmt.Errorf("400: tool result %s without its call", msg.ToolCallID))
			}
		}
		resp := answer("noted: " + lastUser(req))
		last := req.Messages[len(req.Messages)-1]
		if last.Role == providers.RoleUser && strings.Contains(last.Content, "look up") {
			resp = toolTurn(call("lookup", `{"order":"A-17"}`))
		}
		resp.Usage.InputTokens = (&memory.Policy{}).Count(req)
		return resp, nil
	})
}

func (m *memoryModel) counts() (requests, summaries int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.requests), len(m.summaries)
}

// newSummary summarises by listing the user messages it is given after
// the previous summary's, so a test can see what each summary covers.
func newSummary(req providers.Request) (string, error) {
	body := req.Messages[0].Content
	prev, _, _ := strings.Cut(strings.TrimPrefix(body, "# Current summary\n"), "\n")
	if prev == "(none yet)" {
		prev = "said:"
	}
	for _, line := range strings.Split(body, "\n") {
		if text, ok := strings.CutPrefix(line, "user: "); ok {
			prev += " " + strings.Fields(text)[0]
		}
	}
	return prev, nil
}

func lookupTool(t *testing.T) *tools.Set {
	return mustSet(t, tools.MustNew("lookup", "Look an order up.", func(_ context.Context, in struct {
		Order string `json:"order"`
	}) (string, error) {
		return "order " + in.Order + ": shipped " + strings.Repeat("(tracking details) ", 20), nil
	}))
}

// TestMemoryBoundsALongConversation: a conversation of 40 exchanges under
// a memory policy never sends the model more than the budget, never a
// tool result without its call; each summary folds in only what is new;
// the conversation continues as new carrying the compacted state, not the
// transcript; and every history replays.
func TestMemoryBoundsALongConversation(t *testing.T) {
	testMemoryBoundsALongConversation(t, func(a *agent.Agent) *env { return newEnv(t, a) })
}

// TestRedisMemoryBoundsALongConversation is the same on Redis.
func TestRedisMemoryBoundsALongConversation(t *testing.T) {
	testMemoryBoundsALongConversation(t, func(a *agent.Agent) *env { return newRedisEnv(t, agent.Options{}, a) })
}

func testMemoryBoundsALongConversation(t *testing.T, newEnv func(*agent.Agent) *env) {
	mm := &memoryModel{summarize: newSummary}
	policy := &memory.Policy{MaxTokens: 700, SummaryTokens: 150}
	a := &agent.Agent{Name: "bounded", Instructions: "Be brief.", Model: mm.model(), Tools: lookupTool(t),
		Memory: policy, ConversationLimit: 8}
	e := newEnv(a)
	ctx := ctxT(t)
	run := e.startRun(a, "bounded-1", agent.Input{Conversation: true, Message: "m0 hello " + strings.Repeat("chatter ", 30)})
	var generations []int
	compactions := map[int][]map[string]any{}
	for i := 1; i < 40; i++ {
		text := fmt.Sprintf("m%d %s", i, strings.Repeat("chatter ", 30))
		if i%3 == 0 {
			text = fmt.Sprintf("m%d please look up my order", i)
		}
		r, err := say(ctx, e.rt, run.ID, text)
		require.NoError(t, err)
		require.Empty(t, r.Error, "exchange %d", i)
		require.Equal(t, "noted: "+text, r.Text)
		// The reply comes before the run archives what it drops and
		// continues as new: read the run once it waits again.
		info := e.waitStatus(run.ID, backend.StatusWaiting)
		if len(generations) == 0 || generations[len(generations)-1] != info.Generation {
			generations = append(generations, info.Generation)
			e.replays(a, run.ID)
		}
		history := e.history(run.ID)
		assert.Less(t, len(history), 150, "the history of a generation is bounded")
		compactions[info.Generation] = records(t, history, "compaction")
	}
	require.NoError(t, e.rt.End(ctx, run.ID))
	e.result(run)
	e.replays(a, run.ID)
	assert.Greater(t, len(generations), 3, "the conversation continued as new")

	requests, summaries := mm.counts()
	require.Greater(t, summaries, 5)
	for i, req := range mm.requests {
		tokens := policy.Count(req)
		assert.LessOrEqual(t, tokens, policy.MaxTokens, "request %d", i)
		assert.Equal(t, "m0", strings.Fields(req.Messages[0].Content)[0], "request %d: the opening message stays", i)
	}
	assert.Equal(t, 40+40/3, requests, "one call per exchange, two for a lookup")
	// Each summary request holds the previous summary and new messages
	// only: every user message is summarised once.
	seen := map[string]int{}
	for _, req := range mm.summaries {
		for _, line := range strings.Split(req.Messages[0].Content, "\n") {
			if text, ok := strings.CutPrefix(line, "user: "); ok {
				seen[strings.Fields(text)[0]]++
			}
		}
	}
	for word, n := range seen {
		assert.Equal(t, 1, n, "%s summarised %d times", word, n)
	}
	last := mm.requests[len(mm.requests)-1]
	assert.Contains(t, last.System, "# Summary of the earlier conversation\nsaid: m0 m1 m2", "the summary goes on across generations")
	// Generations record their compactions.
	require.NotEmpty(t, compactions[1])
	assert.Equal(t, "tokens", compactions[1][0]["reason"])
}

// TestMemoryCompactionIsNotRepeatedAfterARestart: a worker restarted
// after compactions replays them from history: no summary and no model
// call is made again.
func TestMemoryCompactionIsNotRepeatedAfterARestart(t *testing.T) {
	testMemoryCompactionIsNotRepeatedAfterARestart(t, func(a *agent.Agent) *env { return newEnv(t, a) })
}

// TestRedisMemoryCompactionIsNotRepeatedAfterARestart is the same on
// Redis.
func TestRedisMemoryCompactionIsNotRepeatedAfterARestart(t *testing.T) {
	testMemoryCompactionIsNotRepeatedAfterARestart(t, func(a *agent.Agent) *env { return newRedisEnv(t, agent.Options{}, a) })
}

func testMemoryCompactionIsNotRepeatedAfterARestart(t *testing.T, newEnv func(*agent.Agent) *env) {
	mm := &memoryModel{summarize: newSummary}
	a := &agent.Agent{Name: "restarted-memory", Model: mm.model(), Memory: &memory.Policy{MaxMessages: 6}}
	e := newEnv(a)
	ctx := ctxT(t)
	run := e.startRun(a, "restarted-memory-1", agent.Input{Conversation: true})
	e.waitStatus(run.ID, backend.StatusWaiting)
	for i := range 6 {
		_, err := say(ctx, e.rt, run.ID, fmt.Sprintf("m%d", i))
		require.NoError(t, err)
	}
	requests, summaries := mm.counts()
	require.Equal(t, 6, requests)
	require.NotZero(t, summaries)
	e.halt()
	e.start()
	r, err := say(ctx, e.rt, run.ID, "m6")
	require.NoError(t, err)
	assert.Equal(t, "noted: m6", r.Text)
	after, afterSummaries := mm.counts()
	assert.Equal(t, requests+1, after, "the restarted worker calls the model for the new message only")
	assert.LessOrEqual(t, afterSummaries, summaries+1, "and summarises what is new only")
	e.replays(a, run.ID)
}

// TestMemoryPinnedFacts: facts the caller pins and facts the policy pins
// are in every later prompt, even when the summary drops them; the
// compaction record says which the summary dropped.
func TestMemoryPinnedFacts(t *testing.T) {
	mm := &memoryModel{summarize: func(providers.Request) (string, error) { return "The user chatted.", nil }}
	policy := &memory.Policy{MaxMessages: 4, Pin: func(m providers.Message) []string {
		if strings.Contains(m.Content, "A-17") {
			return []string{"order A-17"}
		}
		return nil
	}}
	a := &agent.Agent{Name: "pinning", Model: mm.model(), Memory: policy}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "pinning-1", agent.Input{Conversation: true,
		Memory: &memory.State{Pinned: []string{"The user's name is Ana."}}})
	for _, text := range []string{"hi", "my order A-17 is late", "and?", "well", "so", "bye"} {
		_, err := say(ctx, e.rt, run.ID, text)
		require.NoError(t, err)
	}
	last := mm.requests[len(mm.requests)-1]
	assert.Contains(t, last.System, "# Facts to keep in mind\n- The user's name is Ana.\n- order A-17\n")
	var dropped []any
	for _, c := range records(t, e.history(run.ID), "compaction") {
		if m, ok := c["missing"].([]any); ok {
			dropped = append(dropped, m...)
		}
	}
	require.NotEmpty(t, dropped)
	for _, f := range dropped {
		assert.Equal(t, "order A-17", f)
	}
}

// TestMemorySummaryFailureFallsBack: a summarizer that fails (after its
// retries) or answers nothing does not stop the conversation: the
// compaction falls back to excerpts and says why.
func TestMemorySummaryFailureFallsBack(t *testing.T) {
	for name, summarize := range map[string]func(providers.Request) (string, error){
		"Error": func(providers.Request) (string, error) {
			return "", durable.NonRetryable(errors.New("upstream 400"))
		},
		"Empty": func(providers.Request) (string, error) { return " ", nil },
	} {
		t.Run(name, func(t *testing.T) {
			mm := &memoryModel{summarize: summarize}
			a := &agent.Agent{Name: "fallback-" + strings.ToLower(name), Model: mm.model(),
				Memory: &memory.Policy{MaxMessages: 4}, ModelOptions: fastModel}
			e := newEnv(t, a)
			ctx := ctxT(t)
			run := e.startRun(a, "fallback-1", agent.Input{Conversation: true})
			for i := range 4 {
				r, err := say(ctx, e.rt, run.ID, fmt.Sprintf("m%d", i))
				require.NoError(t, err)
				require.Empty(t, r.Error)
			}
			recs := records(t, e.history(run.ID), "compaction")
			require.NotEmpty(t, recs)
			assert.NotEmpty(t, recs[0]["fallback"], "%v", recs[0])
			last := mm.requests[len(mm.requests)-1]
			assert.Contains(t, last.System, "user: m0")
		})
	}
}

// TestMemoryCalibratesWithReportedUsage: when the provider reports twice
// the tokens the tokenizer counts, compaction starts earlier.
func TestMemoryCalibratesWithReportedUsage(t *testing.T) {
	run := func(factor int) int {
		var mu sync.Mutex
		calls := 0
		model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			if strings.HasPrefix(req.System, memory.DefaultInstructions) {
				return answer("summary"), nil
			}
			calls++
			resp := answer("ok")
			resp.Usage.InputTokens = factor * (memory.Approx{}).Count(fmt.Sprint(req.Messages))
			return resp, nil
		})
		name := fmt.Sprintf("calibrated-%d", factor)
		a := &agent.Agent{Name: name, Model: model, Memory: &memory.Policy{MaxTokens: 400}}
		e := newEnv(t, a)
		ctx := ctxT(t)
		r := e.startRun(a, name, agent.Input{Conversation: true})
		for i := range 8 {
			_, err := say(ctx, e.rt, r.ID, fmt.Sprintf("m%d %s", i, strings.Repeat("word ", 20)))
			require.NoError(t, err)
		}
		return len(records(t, e.history(r.ID), "compaction"))
	}
	assert.Greater(t, run(3), run(1))
}

func TestMemoryPolicyIsValidated(t *testing.T) {
	rt := agent.NewRuntime(newMemoryStore(), agent.Options{})
	err := rt.Register(&agent.Agent{Name: "bad-memory", Model: scripted.New(), Memory: &memory.Policy{}})
	assert.ErrorContains(t, err, "set MaxTokens or MaxMessages")
}

// TestMemoryTrace: a summary call is a chat span marked
// cairn.memory.summary, and a recall is a span of its own, in the run's
// trace.
func TestMemoryTrace(t *testing.T) {
	mm := &memoryModel{summarize: newSummary}
	a := &agent.Agent{Name: "traced-memory", Model: mm.model(), Memory: &memory.Policy{MaxMessages: 4},
		LongTerm: &agent.LongTerm{Memory: newLongTermMemory(), Recall: 2}}
	e := newTelemetryEnv(t, false, a)
	ctx := ctxT(t)
	run := e.startRun(a, "traced-memory-1", agent.Input{Conversation: true, User: "ana"})
	for i := range 4 {
		_, err := say(ctx, e.rt, run.ID, fmt.Sprintf("m%d", i))
		require.NoError(t, err)
	}
	require.NoError(t, e.rt.End(ctx, run.ID))
	e.result(run)
	eventually(t, "the run's span", func() bool {
		return slices.Contains(names(e.spans.GetSpans()), "invoke_agent traced-memory")
	})
	var summaries, recalls int
	for _, s := range e.spans.GetSpans() {
		if v, ok := attr(s, "cairn.memory.summary"); ok && v.AsBool() {
			summaries++
			assert.Equal(t, "chat scripted", s.Name)
		}
		if s.Name == "recall_memory" {
			recalls++
		}
	}
	assert.NotZero(t, summaries)
	assert.Equal(t, 4, recalls)
}
