package memory_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/providers"
)

func user(text string) providers.Message {
	return providers.Message{Role: providers.RoleUser, Content: text}
}

func assistant(text string) providers.Message {
	return providers.Message{Role: providers.RoleAssistant, Content: text}
}

func calls(ids ...string) providers.Message {
	m := providers.Message{Role: providers.RoleAssistant}
	for _, id := range ids {
		m.ToolCalls = append(m.ToolCalls, providers.ToolCall{ID: id, Name: "lookup", Arguments: `{"q":"` + id + `"}`})
	}
	return m
}

func result(id, text string) providers.Message {
	return providers.Message{Role: providers.RoleTool, ToolCallID: id, Content: text}
}

// randomConversation makes a conversation as the agent loop builds one:
// exchanges of a user message, turns of tool calls each followed by all
// their results (in any order), and a final answer; sometimes an
// exchange is still in flight.
func randomConversation(r *rand.Rand) []providers.Message {
	var w []providers.Message
	n := 0
	text := func() string { return strings.Repeat("word ", 1+r.IntN(60)) }
	for ex := r.IntN(8) + 1; ex > 0; ex-- {
		w = append(w, user(text()))
		for turns := r.IntN(4); turns > 0; turns-- {
			var ids []string
			for k := r.IntN(3) + 1; k > 0; k-- {
				n++
				ids = append(ids, fmt.Sprintf("c%d", n))
			}
			w = append(w, calls(ids...))
			for _, i := range r.Perm(len(ids)) {
				w = append(w, result(ids[i], text()))
			}
		}
		if ex > 1 || r.IntN(2) == 0 {
			w = append(w, assistant(text()))
		}
	}
	return w
}

// orphans returns the tool results in msgs whose call is not in msgs.
func orphans(msgs []providers.Message) []string {
	called := map[string]bool{}
	var bad []string
	for _, m := range msgs {
		for _, c := range m.ToolCalls {
			called[c.ID] = true
		}
		if m.Role == providers.RoleTool && !called[m.ToolCallID] {
			bad = append(bad, m.ToolCallID)
		}
	}
	return bad
}

// unanswered returns the calls in msgs with no result in msgs.
func unanswered(msgs []providers.Message) []string {
	answered := map[string]bool{}
	for _, m := range msgs {
		if m.Role == providers.RoleTool {
			answered[m.ToolCallID] = true
		}
	}
	var bad []string
	for _, m := range msgs {
		for _, c := range m.ToolCalls {
			if !answered[c.ID] {
				bad = append(bad, c.ID)
			}
		}
	}
	return bad
}

// TestCutsNeverOrphanAToolResult checks, on thousands of random
// conversations and policies, that what a plan compacts and what it keeps
// each hold every tool call with all its results.
func TestCutsNeverOrphanAToolResult(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	planned := 0
	for i := range 5000 {
		w := randomConversation(r)
		for _, cut := range memory.CutPoints(w) {
			require.Empty(t, orphans(w[cut:]), "case %d: cut %d orphans a result", i, cut)
			require.Empty(t, unanswered(w[:cut]), "case %d: cut %d separates a call from its result", i, cut)
		}
		p := &memory.Policy{MaxTokens: 20 + r.IntN(400), MaxMessages: r.IntN(20)}
		if p.MaxMessages == 1 {
			p.MaxMessages = 2
		}
		require.NoError(t, p.Validate())
		req := providers.Request{System: "be brief", Messages: w}
		plan := p.Plan(req, memory.State{}, w)
		if plan.Cut == 0 {
			continue
		}
		planned++
		require.Less(t, plan.Cut, len(w))
		require.Empty(t, orphans(w[plan.Cut:]), "case %d: plan %+v orphans a result", i, plan)
		require.Empty(t, unanswered(w[:plan.Cut]), "case %d: plan %+v", i, plan)
	}
	assert.Greater(t, planned, 1000, "the random policies should compact often")
}

func TestPlanKeepsTheLatestExchangeWhenItCan(t *testing.T) {
	w := []providers.Message{
		user("first question"), assistant("first answer " + strings.Repeat("y", 800)),
		user("second question"), calls("a", "b"), result("b", "B"), result("a", "A"),
		assistant("second answer"),
		user("third question"), calls("c"), result("c", "C"),
	}
	p := &memory.Policy{MaxTokens: 240}
	plan := p.Plan(providers.Request{Messages: w}, memory.State{}, w)
	assert.Equal(t, "tokens", plan.Reason)
	assert.Equal(t, 2, plan.Cut, "the first exchange goes, but for its question (the opening); the rest is within KeepTokens")

	// Once the opening is kept, it is not counted again.
	opening := w[0]
	plan = p.Plan(providers.Request{Messages: append([]providers.Message{opening}, w[2:]...)},
		memory.State{Opening: &opening, Evicted: 2}, w[2:])
	assert.Zero(t, plan.Cut)

	// Within the budget, nothing happens.
	p = &memory.Policy{MaxTokens: 10_000}
	assert.Zero(t, p.Plan(providers.Request{Messages: w}, memory.State{}, w).Cut)

	// The provider says the tokenizer counts half: the same prompt is
	// past the budget.
	p = &memory.Policy{MaxTokens: 400}
	assert.Zero(t, p.Plan(providers.Request{Messages: w}, memory.State{Scale: 1}, w).Cut)
	assert.NotZero(t, p.Plan(providers.Request{Messages: w}, memory.State{Scale: 2}, w).Cut)
}

func TestPlanByMessages(t *testing.T) {
	w := []providers.Message{user("1"), assistant("1"), user("2"), assistant("2"), user("3"), calls("x"), result("x", "X")}
	p := &memory.Policy{MaxMessages: 6}
	plan := p.Plan(providers.Request{Messages: w}, memory.State{}, w)
	assert.Equal(t, "messages", plan.Reason)
	assert.Equal(t, 4, plan.Cut, "KeepMessages defaults to 3: the latest exchange")
}

func TestPlanCutsInsideAnExchangeOnlyWhenItMust(t *testing.T) {
	big := strings.Repeat("z", 2000)
	w := []providers.Message{user("look it all up"), calls("a"), result("a", big), calls("b"), result("b", big), calls("c"), result("c", "small")}
	p := &memory.Policy{MaxTokens: 700}
	plan := p.Plan(providers.Request{Messages: w}, memory.State{}, w)
	assert.Equal(t, 5, plan.Cut, "the exchange alone is past the budget: cut inside it, at a call")

	// A single result past the budget cannot be cut away from its call.
	w = []providers.Message{user("q"), calls("a"), result("a", big+big)}
	plan = p.Plan(providers.Request{Messages: w}, memory.State{}, w)
	assert.Equal(t, 1, plan.Cut, "the user message can go; the call and its result stay together")
	w = []providers.Message{calls("a"), result("a", big+big)}
	plan = p.Plan(providers.Request{Messages: w}, memory.State{}, w)
	assert.Zero(t, plan.Cut)
	assert.Contains(t, plan.Reason, "no message can be compacted")
}

func TestSummaryRequestIsIncremental(t *testing.T) {
	p := &memory.Policy{MaxTokens: 4000, Pin: pinOrders}
	s := memory.State{Summary: "The user, Ana, ordered a lamp (order A-17).", Pinned: []string{"order A-17"}}
	evicted := []providers.Message{user("Also order B-9 please"), calls("x"), result("x", `{"ok":true}`)}
	req := p.SummaryRequest(s, evicted)
	require.Len(t, req.Messages, 1)
	body := req.Messages[0].Content
	assert.Contains(t, body, "Ana, ordered a lamp", "the previous summary")
	assert.Contains(t, body, "- order A-17\n- order B-9\n", "old and new pinned facts")
	assert.Contains(t, body, "user: Also order B-9 please")
	assert.Contains(t, body, `assistant calls lookup({"q":"x"})`)
	assert.Contains(t, body, `tool result: {"ok":true}`)
	assert.Equal(t, 500, req.Settings.MaxTokens)
	assert.Contains(t, req.System, "at most 500 tokens")
}

func pinOrders(m providers.Message) []string {
	var facts []string
	for _, f := range strings.Fields(m.Content) {
		if strings.Count(f, "-") == 1 && len(f) <= 5 && strings.ToUpper(f) == f {
			facts = append(facts, "order "+f)
		}
	}
	return facts
}

func TestFold(t *testing.T) {
	evicted := []providers.Message{user("I am Ana, order A-17 is late"), assistant("Sorry Ana, checking.")}
	p := &memory.Policy{MaxTokens: 400, Pin: pinOrders}

	t.Run("KeepsTheSummaryAndOpening", func(t *testing.T) {
		s, rec := p.Fold(memory.State{}, evicted, "  Ana says order A-17 is late.  ", nil)
		assert.Equal(t, "Ana says order A-17 is late.", s.Summary)
		require.NotNil(t, s.Opening)
		assert.Equal(t, evicted[0], *s.Opening)
		assert.Equal(t, []string{"order A-17"}, s.Pinned)
		assert.Equal(t, memory.Compaction{Evicted: 2, SummaryTokens: 7, Pinned: []string{"order A-17"}}, rec)
		assert.Equal(t, 2, s.Evicted)
		assert.Equal(t, 1, s.Compactions)

		// The opening is taken once.
		s2, _ := p.Fold(s, []providers.Message{user("later")}, "more", nil)
		assert.Equal(t, evicted[0], *s2.Opening)
		assert.Equal(t, 3, s2.Evicted)
	})
	t.Run("CatchesADroppedFact", func(t *testing.T) {
		s, rec := p.Fold(memory.State{}, evicted, "Ana's order is late.", nil)
		assert.Equal(t, []string{"order A-17"}, rec.Missing)
		assert.Equal(t, []string{"order A-17"}, s.Pinned, "kept: the model still sees it")
		assert.Contains(t, s.System("Be kind."), "# Facts to keep in mind\n- order A-17\n")
	})
	for name, tc := range map[string]struct {
		summary string
		err     error
		why     string
	}{
		"Empty":   {"  \n", nil, "empty"},
		"TooLong": {strings.Repeat("blah ", 200), nil, "past the budget of 50"},
		"Failed":  {"", errors.New("503 from upstream"), "the summarizer failed: 503 from upstream"},
	} {
		t.Run("FallsBackWhen"+name, func(t *testing.T) {
			prev := memory.State{Summary: "Earlier: Ana asked about shipping."}
			s, rec := p.Fold(prev, evicted, tc.summary, tc.err)
			assert.Contains(t, rec.Fallback, tc.why)
			assert.Contains(t, s.Summary, "Earlier: Ana asked about shipping.")
			assert.Contains(t, s.Summary, "user: I am Ana, order A-17 is late")
			assert.LessOrEqual(t, memory.Approx{}.Count(s.Summary), p.SummaryBudget())
		})
	}
	t.Run("FallbackStaysWithinBudget", func(t *testing.T) {
		s := memory.State{}
		for i := range 50 {
			s, _ = p.Fold(s, []providers.Message{user(fmt.Sprintf("message %d %s", i, strings.Repeat("q", 500)))}, "", nil)
			require.LessOrEqual(t, memory.Approx{}.Count(s.Summary), p.SummaryBudget(), "after %d", i)
		}
		assert.True(t, strings.HasPrefix(s.Summary, "[earlier parts omitted]"), s.Summary)
		assert.Contains(t, s.Summary, "message 49")
	})
	t.Run("BoundsThePinnedFacts", func(t *testing.T) {
		p := &memory.Policy{MaxTokens: 400, MaxPinned: 2, Pin: pinOrders}
		s, rec := p.Fold(memory.State{Pinned: []string{"order Z-1"}}, []providers.Message{user("A-1 B-2")}, "A-1, B-2 and Z-1", nil)
		assert.Equal(t, []string{"order A-1", "order B-2"}, s.Pinned)
		assert.Equal(t, []string{"order Z-1"}, rec.Unpinned)
	})
	t.Run("NoSummary", func(t *testing.T) {
		p := &memory.Policy{MaxMessages: 4, NoSummary: true}
		s, rec := p.Fold(memory.State{}, evicted, "", nil)
		assert.Empty(t, s.Summary)
		assert.Empty(t, rec.Fallback)
	})
}

func TestValidate(t *testing.T) {
	for _, p := range []memory.Policy{
		{},
		{MaxTokens: -1},
		{MaxTokens: 100, KeepTokens: 100},
		{MaxMessages: 1},
		{MaxMessages: 10, KeepMessages: 10},
	} {
		assert.Error(t, p.Validate(), "%+v", p)
	}
	assert.NoError(t, (&memory.Policy{MaxTokens: 100, MaxMessages: 10}).Validate())
}

func TestRender(t *testing.T) {
	assert.Equal(t, "user: héllo [... 6 more bytes]", memory.Render(user("héllo world"), 6))
	assert.Equal(t, "assistant: (empty)", memory.Render(assistant(""), 0))
}
