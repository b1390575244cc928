package memory

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/cairn-dev/cairn/providers"
)

// Defaults for the zero fields of a Policy.
const (
	// DefaultMaxPinned is the default Policy.MaxPinned.
	DefaultMaxPinned = 32
	// DefaultSummaryTokens is Policy.SummaryTokens when MaxTokens is 0.
	DefaultSummaryTokens = 1024
	// maxExcerpt is the most bytes of one message that a summary request,
	// or a fallback summary, quotes.
	maxExcerpt = 4000
	// fallbackExcerpt is the most bytes of one message a fallback
	// summary keeps.
	fallbackExcerpt = 300
)

// Policy says what the model sees of a conversation at each turn: the
// system instructions, the conversation's first user message, the facts
// pinned so far and a summary of what was compacted, then the latest
// messages verbatim, within a budget of tokens and of messages.
//
// Before a model call whose prompt would pass MaxTokens or MaxMessages,
// the oldest messages are compacted: folded into the summary, which the
// Summarizer rewrites from the previous summary and the evicted messages
// only (never the whole conversation again), until what stays verbatim is
// within KeepTokens and KeepMessages. A compaction never separates an
// assistant message that calls tools from those tools' results, and
// keeps the latest exchange (from the last user message on) unless that
// exchange alone is past the budget.
//
// A Policy is a plain value, read by the agent loop. Its decisions are
// replayed, so changing it for conversations in flight is a deploy. Its
// methods are deterministic and safe for concurrent use.
type Policy struct {
	// MaxTokens is the prompt's budget in tokens: system instructions,
	// tools and messages, as Tokenizer counts them, corrected by the
	// counts the provider reports. 0 means no bound by tokens.
	MaxTokens int
	// MaxMessages bounds the messages of the prompt. 0 means no bound
	// by count. At least one of MaxTokens and MaxMessages is set.
	MaxMessages int
	// KeepTokens and KeepMessages are what a compaction leaves verbatim,
	// at most; they default to half of MaxTokens and of MaxMessages, so
	// that a compaction is not needed again at the next turn.
	KeepTokens   int
	KeepMessages int
	// SummaryTokens bounds the summary. Default: MaxTokens/8, or
	// DefaultSummaryTokens without MaxTokens.
	SummaryTokens int
	// Summarizer writes the summaries. Default: the agent's model. Its
	// calls are activities, journaled like the agent's model calls.
	Summarizer providers.Model
	// NoSummary drops the messages evicted instead of summarising them:
	// a plain sliding window. Pinned facts are still kept.
	NoSummary bool
	// Pin picks, from a message about to be compacted, facts to keep
	// verbatim in every later prompt: an order number, an address, a
	// decision. It must be deterministic (it is replayed).
	Pin func(providers.Message) []string
	// MaxPinned bounds the pinned facts; past it, the oldest are
	// dropped. Default DefaultMaxPinned.
	MaxPinned int
	// Tokenizer counts tokens. Default: Approx.
	Tokenizer Tokenizer
	// Instructions, if set, replace the instructions given to the
	// Summarizer.
	Instructions string
}

// State is what compactions keep of the messages they evicted. The agent
// journals it and carries it from one generation of a conversation to the
// next (continue-as-new), so that neither the prompt nor the history of a
// generation grows with the conversation's length.
type State struct {
	// Summary is the running summary of the evicted messages.
	Summary string `json:"summary,omitempty"`
	// Pinned are facts kept verbatim, oldest first.
	Pinned []string `json:"pinned,omitempty"`
	// Opening is the conversation's first user message, kept verbatim
	// once it is evicted.
	Opening *providers.Message `json:"opening,omitempty"`
	// Evicted counts the messages compacted so far; Compactions, the
	// compactions.
	Evicted     int `json:"evicted,omitempty"`
	Compactions int `json:"compactions,omitempty"`
	// Scale is the ratio of the input tokens the provider reported for
	// the last model call to the tokenizer's count of its request: Plan's
	// correction. 0 until a provider reports usage.
	Scale float64 `json:"scale,omitempty"`
}

// IsZero says whether s holds nothing: no compaction happened and no fact
// was pinned.
func (s State) IsZero() bool {
	return s.Summary == "" && len(s.Pinned) == 0 && s.Opening == nil && s.Evicted == 0 && s.Compactions == 0 && s.Scale == 0
}

// Validate checks a policy.
func (p *Policy) Validate() error {
	switch {
	case p.MaxTokens < 0 || p.MaxMessages < 0 || p.KeepTokens < 0 || p.KeepMessages < 0 || p.SummaryTokens < 0 || p.MaxPinned < 0:
		return errors.New("memory: policy: negative bound")
	case p.MaxTokens == 0 && p.MaxMessages == 0:
		return errors.New("memory: policy: set MaxTokens or MaxMessages")
	case p.MaxTokens > 0 && p.KeepTokens >= p.MaxTokens:
		return fmt.Errorf("memory: policy: KeepTokens %d must be below MaxTokens %d", p.KeepTokens, p.MaxTokens)
	case p.MaxMessages > 0 && p.KeepMessages >= p.MaxMessages:
		return fmt.Errorf("memory: policy: KeepMessages %d must be below MaxMessages %d", p.KeepMessages, p.MaxMessages)
	case p.MaxMessages == 1:
		return errors.New("memory: policy: MaxMessages must be at least 2")
	}
	return nil
}

func (p *Policy) counter() counter {
	if p.Tokenizer == nil {
		return counter{Approx{}}
	}
	return counter{p.Tokenizer}
}

func (p *Policy) keepTokens() int {
	if p.KeepTokens > 0 {
		return p.KeepTokens
	}
	return p.MaxTokens / 2 // 0: no bound
}

func (p *Policy) keepMessages() int {
	if p.KeepMessages > 0 {
		return p.KeepMessages
	}
	return p.MaxMessages / 2
}

// SummaryBudget is the most tokens a summary may have.
func (p *Policy) SummaryBudget() int {
	switch {
	case p.SummaryTokens > 0:
		return p.SummaryTokens
	case p.MaxTokens > 0:
		return max(p.MaxTokens/8, 16)
	}
	return DefaultSummaryTokens
}

func (p *Policy) maxPinned() int {
	if p.MaxPinned > 0 {
		return p.MaxPinned
	}
	return DefaultMaxPinned
}

// System returns the system instructions of a prompt: the agent's, then
// the pinned facts and the summary, each under a heading.
func (s State) System(instructions string) string {
	var b strings.Builder
	b.WriteString(instructions)
	section := func(title string) {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(title)
		b.WriteString("\n")
	}
	if len(s.Pinned) > 0 {
		section("# Facts to keep in mind")
		for _, f := range s.Pinned {
			b.WriteString("- ")
			b.WriteString(f)
			b.WriteString("\n")
		}
	}
	if s.Summary != "" {
		section("# Summary of the earlier conversation")
		b.WriteString(s.Summary)
	}
	return b.String()
}

// Messages returns the messages of a prompt: the opening message, if it
// was compacted away, then the verbatim window.
func (s State) Messages(window []providers.Message) []providers.Message {
	if s.Opening == nil {
		return window
	}
	return append([]providers.Message{*s.Opening}, window...)
}

// Count returns the tokens of a request as the policy's Tokenizer counts
// them, framing included, before any correction.
func (p *Policy) Count(req providers.Request) int { return p.counter().request(req) }

// Plan is a policy's decision before a model call.
type Plan struct {
	// Cut is how many of the window's first messages to compact; 0
	// means none.
	Cut int
	// Tokens is the prompt's size as estimated, Budget the policy's
	// MaxTokens.
	Tokens, Budget int
	// Reason says why a compaction is due ("tokens", "messages"), or,
	// with Cut 0, why it is due but impossible.
	Reason string
}

// Plan decides whether the model call of req must be preceded by a
// compaction, and of how many messages. req is the prompt as it would be
// sent: built with s.System and s.Messages from the window, whose
// messages are req.Messages' last ones. The tokenizer's counts are
// corrected by s.Scale. A cut that evicts the conversation's first user
// message is planned with that message kept, as Fold keeps it.
func (p *Policy) Plan(req providers.Request, s State, window []providers.Message) Plan {
	scale := s.Scale
	if scale <= 0 || math.IsNaN(scale) || math.IsInf(scale, 0) {
		scale = 1
	}
	c := p.counter()
	scaled := func(n int) int { return int(math.Ceil(float64(n) * scale)) }
	tok := make([]int, len(window))
	tail := make([]int, len(window)+1) // tail[i]: tokens of window[i:]
	for i := len(window) - 1; i >= 0; i-- {
		tok[i] = scaled(c.message(window[i]))
		tail[i] = tail[i+1] + tok[i]
	}
	total := scaled(c.request(req))
	plan := Plan{Tokens: total, Budget: p.MaxTokens}
	switch {
	case p.MaxTokens > 0 && total > p.MaxTokens:
		plan.Reason = "tokens"
	case p.MaxMessages > 0 && len(req.Messages) > p.MaxMessages:
		plan.Reason = "messages"
	default:
		return plan
	}
	fixed := total - tail[0] // what compaction cannot shrink
	// The opening message, if a cut past it would keep it.
	opening := -1
	if s.Opening == nil && s.Evicted == 0 {
		opening = slices.IndexFunc(window, func(m providers.Message) bool { return m.Role == providers.RoleUser })
	}
	kept := func(cut int) (tokens, messages int) {
		tokens, messages = tail[cut], len(window)-cut
		if opening >= 0 && opening < cut {
			tokens, messages = tokens+tok[opening], messages+1
		}
		return tokens, messages
	}
	others := len(req.Messages) - len(window) // messages before the window
	fits := func(cut int) bool {
		tokens, messages := kept(cut)
		return (p.MaxTokens == 0 || fixed+tokens <= p.MaxTokens) &&
			(p.MaxMessages == 0 || others+messages <= p.MaxMessages)
	}
	keeps := func(cut int) bool {
		tokens, messages := kept(cut)
		return (p.keepTokens() == 0 || tokens <= p.keepTokens()) &&
			(p.keepMessages() == 0 || messages <= p.keepMessages())
	}
	cuts := CutPoints(window)
	lastUser := -1
	for i, m := range window {
		if m.Role == providers.RoleUser {
			lastUser = i
		}
	}
	// The first cut that leaves what the policy keeps, short of the
	// latest exchange; failing that, the deepest cut short of it that
	// fits the budget. Failing that, the same inside the exchange: the
	// first cut that leaves what the policy keeps, or the first that
	// fits, or the deepest cut there is.
	var best, insideKeeps, insideFits, deepest int
	for _, cut := range cuts {
		switch {
		case cut <= lastUser && keeps(cut):
			plan.Cut = cut
			return plan
		case cut <= lastUser && fits(cut):
			best = cut
		case cut > lastUser && insideKeeps == 0 && keeps(cut):
			insideKeeps = cut
		case cut > lastUser && insideFits == 0 && fits(cut):
			insideFits = cut
		}
		deepest = cut
	}
	plan.Cut = cmp.Or(best, insideKeeps, insideFits, deepest)
	if plan.Cut == 0 {
		plan.Reason += ": no message can be compacted without separating a tool call from its result"
	}
	return plan
}

// CutPoints returns, in increasing order, the indexes i in 1..len(w)-1 at
// which w can be cut in two, w[:i] compacted and w[i:] kept, without
// orphaning a message: w[i] is not a tool result, and no tool result in
// w[i:] answers a call made in w[:i]. The last message is always kept.
func CutPoints(w []providers.Message) []int {
	// blocked[i] counts the calls made before i and answered at or
	// after i (a difference array over the spans call..result).
	blocked := make([]int, len(w)+1)
	calledAt := map[string]int{}
	for j, m := range w {
		for _, tc := range m.ToolCalls {
			calledAt[tc.ID] = j
		}
		if m.Role != providers.RoleTool {
			continue
		}
		if i, ok := calledAt[m.ToolCallID]; ok && i < j {
			blocked[i+1]++
			blocked[j+1]--
		}
	}
	var cuts []int
	open := blocked[0]
	for i := 1; i < len(w); i++ {
		open += blocked[i]
		if open == 0 && w[i].Role != providers.RoleTool {
			cuts = append(cuts, i)
		}
	}
	return cuts
}

// DefaultInstructions are the instructions given to a Summarizer, unless
// Policy.Instructions replace them.
const DefaultInstructions = `You keep the running summary of a conversation between a user and an AI assistant, so the assistant can go on without the older messages.
Rewrite the current summary to include the new messages. Keep every fact, name, number, identifier, date, decision, preference, commitment and open question; keep the facts listed under "Facts to keep" word for word. Drop greetings and repetition. Write in the third person, in plain sentences, without a preamble.`

// SummaryRequest returns the request that asks the summarizer for the
// summary of s updated with the evicted messages: the previous summary,
// the pinned facts and the new messages only.
func (p *Policy) SummaryRequest(s State, evicted []providers.Message) providers.Request {
	var b strings.Builder
	b.WriteString("# Current summary\n")
	if s.Summary == "" {
		b.WriteString("(none yet)\n")
	} else {
		b.WriteString(s.Summary)
		b.WriteString("\n")
	}
	if facts, _ := p.pin(s.Pinned, evicted); len(facts) > 0 {
		b.WriteString("\n# Facts to keep\n")
		for _, f := range facts {
			b.WriteString("- " + f + "\n")
		}
	}
	b.WriteString("\n# New messages\n")
	for _, m := range evicted {
		b.WriteString(Render(m, maxExcerpt))
		b.WriteString("\n")
	}
	budget := p.SummaryBudget()
	instr := p.Instructions
	if instr == "" {
		instr = DefaultInstructions
	}
	instr += fmt.Sprintf("\nWrite at most %d tokens (about %d words). Answer with the summary only.", budget, budget*3/4)
	return providers.Request{System: instr,
		Messages: []providers.Message{{Role: providers.RoleUser, Content: b.String()}},
		Settings: providers.Settings{MaxTokens: budget}}
}

// Render writes a message as one line of a transcript, its text cut to
// limit bytes (0: no limit): "user: ...", "assistant: ...", "assistant
// calls lookup({...})", "tool result: ...".
func Render(m providers.Message, limit int) string {
	var parts []string
	if m.Content != "" {
		who := string(m.Role)
		if m.Role == providers.RoleTool {
			who = "tool result"
		}
		parts = append(parts, who+": "+excerpt(m.Content, limit))
	}
	for _, tc := range m.ToolCalls {
		parts = append(parts, fmt.Sprintf("%s calls %s(%s)", m.Role, tc.Name, excerpt(tc.Arguments, limit)))
	}
	if len(parts) == 0 {
		return string(m.Role) + ": (empty)"
	}
	return strings.Join(parts, "\n")
}

func excerpt(s string, limit int) string {
	if limit <= 0 || len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf(" [... %d more bytes]", len(s)-cut)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Compaction is what a compaction did, as the agent records it in the
// run's history.
type Compaction struct {
	// Evicted is how many messages were compacted.
	Evicted int `json:"evicted"`
	// Reason is why ("tokens", "messages").
	Reason string `json:"reason,omitempty"`
	// TokensBefore is the prompt's estimated size before; SummaryTokens
	// the new summary's size.
	TokensBefore  int `json:"tokens_before,omitempty"`
	SummaryTokens int `json:"summary_tokens"`
	// Fallback says why the summarizer's summary was not used, if it
	// was not: the summary kept is then the previous one with excerpts of
	// the evicted messages, cut to the budget.
	Fallback string `json:"fallback,omitempty"`
	// Pinned are the facts this compaction pinned; Unpinned, those it
	// dropped to stay within MaxPinned.
	Pinned   []string `json:"pinned,omitempty"`
	Unpinned []string `json:"unpinned,omitempty"`
	// Missing are pinned facts that the summary left out although the
	// messages it summarised mention them. They stay pinned, so the
	// model still sees them.
	Missing []string `json:"missing,omitempty"`
}

// Fold returns the state after the evicted messages are compacted with the
// summary the summarizer wrote, or the error it failed with (after its
// retries). A summary that is empty or past the budget, or an error, is
// not fatal: the previous summary is kept with excerpts of the evicted
// messages, cut to the budget, and the Compaction says why.
func (p *Policy) Fold(s State, evicted []providers.Message, summary string, err error) (State, Compaction) {
	c := p.counter()
	next := s
	rec := Compaction{Evicted: len(evicted)}
	if next.Opening == nil && s.Evicted == 0 {
		if i := slices.IndexFunc(evicted, func(m providers.Message) bool { return m.Role == providers.RoleUser }); i >= 0 {
			opening := evicted[i]
			next.Opening = &opening
		}
	}
	// Pin first: the facts of the evicted messages are what the summary
	// is checked against.
	next.Pinned, rec.Pinned = p.pin(s.Pinned, evicted)
	if over := len(next.Pinned) - p.maxPinned(); over > 0 {
		rec.Unpinned = slices.Clone(next.Pinned[:over])
		next.Pinned = slices.Delete(next.Pinned, 0, over)
	}
	budget := p.SummaryBudget()
	summary = strings.TrimSpace(summary)
	switch {
	case p.NoSummary:
		summary = s.Summary
	case err != nil:
		rec.Fallback = "the summarizer failed: " + err.Error()
	case summary == "":
		rec.Fallback = "the summary came back empty"
	case c.tok.Count(summary) > budget:
		rec.Fallback = fmt.Sprintf("the summary has %d tokens, past the budget of %d", c.tok.Count(summary), budget)
	}
	if rec.Fallback != "" {
		summary = p.fallback(s.Summary, evicted)
	}
	next.Summary = summary
	rec.SummaryTokens = c.tok.Count(summary)
	if !p.NoSummary {
		mentioned := strings.ToLower(s.Summary)
		for _, m := range evicted {
			mentioned += "\n" + strings.ToLower(Render(m, 0))
		}
		kept := strings.ToLower(summary)
		for _, f := range next.Pinned {
			lf := strings.ToLower(f)
			if strings.Contains(mentioned, lf) && !strings.Contains(kept, lf) {
				rec.Missing = append(rec.Missing, f)
			}
		}
	}
	next.Evicted += len(evicted)
	next.Compactions++
	return next, rec
}

// pin returns the pinned facts with those Pin picks from the evicted
// messages added, and the added ones.
func (p *Policy) pin(pinned []string, evicted []providers.Message) (all, added []string) {
	all = slices.Clone(pinned)
	if p.Pin == nil {
		return all, nil
	}
	for _, m := range evicted {
		for _, f := range p.Pin(m) {
			if f = strings.TrimSpace(f); f != "" && !slices.Contains(all, f) {
				all = append(all, f)
				added = append(added, f)
			}
		}
	}
	return all, added
}

// fallback is the summary kept when the summarizer's cannot be: the
// previous summary and an excerpt of each evicted message, its oldest
// lines dropped to fit the budget.
func (p *Policy) fallback(previous string, evicted []providers.Message) string {
	c := p.counter()
	lines := []string{}
	if previous != "" {
		lines = append(lines, strings.Split(previous, "\n")...)
	}
	for _, m := range evicted {
		lines = append(lines, strings.ReplaceAll(Render(m, fallbackExcerpt), "\n", " / "))
	}
	const marker = "[earlier parts omitted]"
	budget := p.SummaryBudget() - c.tok.Count(marker) - 1
	dropped := false
	for len(lines) > 1 && c.tok.Count(strings.Join(lines, "\n")) > budget {
		lines, dropped = lines[1:], true
	}
	if len(lines) == 1 {
		for line := lines[0]; c.tok.Count(line) > budget && line != ""; {
			cut := len(line) / 2
			for cut > 0 && !isRuneStart(line[cut]) {
				cut--
			}
			line = line[:cut]
			lines[0], dropped = line, true
		}
	}
	out := strings.Join(lines, "\n")
	if dropped {
		out = marker + "\n" + out
	}
	return out
}
