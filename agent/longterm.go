package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// Names of the long-term memory tools.
const (
	RememberTool = "remember"
	RecallTool   = "recall"
	ForgetTool   = "forget"
)

// DefaultRecallLimit is how many memories the recall tool returns when the
// model does not say.
const DefaultRecallLimit = 5

// LongTerm gives an agent memories that outlive its runs, kept in a
// memory.Memory under a namespace of the run's user (Input.User): tools
// for the model to remember, recall and forget; memories recalled into
// the context of each exchange; and extraction of what to remember after
// each exchange. A run without a user has no long-term memory: the tools
// are not offered and nothing is recalled.
//
// Every write is an activity, and a memory's key is the hash of its text,
// so a write retried after a crash, or the same fact remembered twice,
// leaves one memory.
type LongTerm struct {
	// Memory keeps and searches the memories. Required.
	Memory *memory.Memory
	// Namespace is the namespace of a user's memories. Default:
	// "user/" + user. It must be deterministic.
	Namespace func(user string) string
	// Tools offers the model the tools remember, recall and forget.
	Tools bool
	// Recall, if positive, is how many memories, the closest in meaning
	// to the user's message and scoring at least MinScore, are put in
	// the system instructions at the start of each exchange. The search
	// is an activity, so replay sees the same memories.
	Recall   int
	MinScore float64
	// Extractor, if set, is a model that reads each exchange once it is
	// answered and remembers what is worth keeping about the user, in a
	// child run of an agent named <agent>-memory with the tools remember
	// and forget. The conversation does not wait for it: the memories
	// arrive durably, for the next exchanges and conversations.
	Extractor providers.Model
}

// ExtractorInstructions are the instructions of an extractor agent.
const ExtractorInstructions = `You maintain what an assistant remembers about a user across conversations.
You are given an exchange between the user and the assistant. Call the tool remember once for each lasting fact about the user worth remembering (preferences, names, contact details, commitments, decisions), as one short self-contained sentence in the third person ("The user prefers email."). Do not remember what only matters to this exchange, nor what the assistant said about itself. When nothing is worth remembering, call no tool. Then answer "done".`

func (lt *LongTerm) namespace(user string) string {
	if user == "" {
		return ""
	}
	if lt.Namespace != nil {
		return lt.Namespace(user)
	}
	return "user/" + user
}

func (lt *LongTerm) validate(a *Agent) error {
	if lt.Memory == nil || lt.Memory.Store == nil || lt.Memory.Embedder == nil {
		return fmt.Errorf("agent %s: long-term memory needs a Memory with a Store and an Embedder", a.Name)
	}
	if lt.Recall < 0 || lt.Recall > memory.MaxTopK {
		return fmt.Errorf("agent %s: LongTerm.Recall must be 0 to %d", a.Name, memory.MaxTopK)
	}
	return nil
}

// extractor is the agent that extracts the memories of a's exchanges.
func (lt *LongTerm) extractor(a *Agent) *Agent {
	return &Agent{Name: a.Name + "-memory", Description: "Remembers what is worth keeping of an exchange.",
		Instructions: ExtractorInstructions, Model: lt.Extractor, MaxTurns: 4,
		LongTerm: &LongTerm{Memory: lt.Memory, Namespace: lt.Namespace, Tools: true}, ModelOptions: a.ModelOptions}
}

// namespaceKey carries a run's namespace to the memory tools.
type namespaceKey struct{}

func namespaceFrom(ctx context.Context) (string, error) {
	ns, _ := ctx.Value(namespaceKey{}).(string)
	if ns == "" {
		return "", errors.New("this run has no user, so no long-term memory")
	}
	return ns, nil
}

// memoryKey is the key of a memory: the hash of its text, so that the
// same fact, or a retried write, leaves one memory.
func memoryKey(text string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.Join(strings.Fields(text), " "))))
	return hex.EncodeToString(sum[:8])
}

// recalled is a memory as the model reads it: no vector.
type recalled struct {
	Key   string  `json:"key"`
	Text  string  `json:"text"`
	Score float64 `json:"score"`
}

func recalledOf(hits []memory.Hit) []recalled {
	out := make([]recalled, len(hits))
	for i, h := range hits {
		out[i] = recalled{Key: h.Item.Key, Text: h.Item.Text, Score: h.Score}
	}
	return out
}

// tools returns the memory tools. They find the run's namespace in their
// context, where callTool puts it.
func (lt *LongTerm) tools() *tools.Set {
	type rememberArgs struct {
		Text string `json:"text" jsonschema:"description=the fact to remember: one short self-contained sentence"`
	}
	type recallArgs struct {
		Query string `json:"query" jsonschema:"description=what to look for, in words"`
		Limit int    `json:"limit,omitempty" jsonschema:"description=how many memories at most (default 5)"`
	}
	type forgetArgs struct {
		Key string `json:"key" jsonschema:"description=the key of the memory, as remember or recall gave it"`
	}
	remember := tools.MustNew(RememberTool, "Remember a fact about the user for later conversations.",
		func(ctx context.Context, in rememberArgs) (map[string]string, error) {
			ns, err := namespaceFrom(ctx)
			if err != nil {
				return nil, tools.Fatal(err)
			}
			text := strings.TrimSpace(in.Text)
			item := memory.Item{Namespace: ns, Key: memoryKey(text), Text: text}
			if key, ok := tools.IdempotencyKey(ctx); ok {
				item.Metadata = map[string]string{"source": key}
			}
			if _, err := lt.Memory.Remember(ctx, item); err != nil {
				return nil, userError(err)
			}
			return map[string]string{"remembered": item.Key}, nil
		}, tools.HonorsIdempotencyKey())
	recall := tools.MustNew(RecallTool, "Search what you remember about the user, by meaning.",
		func(ctx context.Context, in recallArgs) (map[string][]recalled, error) {
			ns, err := namespaceFrom(ctx)
			if err != nil {
				return nil, tools.Fatal(err)
			}
			limit := in.Limit
			if limit <= 0 {
				limit = DefaultRecallLimit
			}
			hits, err := lt.Memory.Recall(ctx, in.Query, memory.Query{Namespace: ns, TopK: min(limit, memory.MaxTopK), MinScore: lt.MinScore})
			if err != nil {
				return nil, userError(err)
			}
			return map[string][]recalled{"memories": recalledOf(hits)}, nil
		}, tools.HonorsIdempotencyKey())
	forget := tools.MustNew(ForgetTool, "Forget a memory about the user, by its key.",
		func(ctx context.Context, in forgetArgs) (map[string]string, error) {
			ns, err := namespaceFrom(ctx)
			if err != nil {
				return nil, tools.Fatal(err)
			}
			if err := lt.Memory.Store.Delete(ctx, ns, in.Key); err != nil {
				return nil, userError(err)
			}
			return map[string]string{"forgotten": in.Key}, nil
		}, tools.HonorsIdempotencyKey())
	set, err := tools.NewNamedSet("memory", remember, recall, forget)
	if err != nil {
		panic(err) // the names are distinct constants
	}
	return set
}

// userError sorts a memory tool's errors: what the model did wrong (an
// item or query that breaks a limit) and what retrying cannot mend (an
// embedder that refuses the request) are results the model reads; the
// store or the embedder failing for now is retried as the tool's policy
// says.
func userError(err error) error {
	var pe *providers.Error
	switch {
	case errors.Is(err, memory.ErrInvalidItem), errors.Is(err, memory.ErrInvalidQuery),
		errors.Is(err, memory.ErrInvalidNamespace), errors.Is(err, memory.ErrDimension):
		return err
	case errors.As(err, &pe) && !pe.Retryable():
		return err
	}
	return tools.Retryable(err)
}

// recallCall is the input of the activity that recalls memories at the
// start of an exchange.
type recallCall struct {
	Namespace string `json:"namespace"`
	Text      string `json:"text"`
}

// recallActivity searches the memories closest to an exchange's message.
func (rt *Runtime) recallActivity(lt *LongTerm) func(context.Context, recallCall) ([]recalled, error) {
	return func(ctx context.Context, c recallCall) ([]recalled, error) {
		hits, err := lt.Memory.Recall(ctx, c.Text, memory.Query{Namespace: c.Namespace, TopK: lt.Recall, MinScore: lt.MinScore})
		if errors.Is(err, memory.ErrInvalidQuery) || errors.Is(err, memory.ErrInvalidNamespace) {
			return nil, durable.NonRetryable(err)
		}
		return recalledOf(hits), err
	}
}

// recall puts the memories closest to the exchange's message in the
// context, if the agent recalls. A search that fails, after its retries,
// leaves the exchange without memories, not failed.
func (st *state) recall(ctx durable.Context) error {
	st.recalled = nil
	lt := st.reg.agent.LongTerm
	text := lastUserText(st.messages)
	if lt == nil || lt.Recall <= 0 || st.namespace() == "" || text == "" {
		return nil
	}
	hits, err := durable.Execute(ctx, st.reg.recall, recallCall{Namespace: st.namespace(), Text: text})
	switch {
	case errors.Is(err, durable.ErrCanceled):
		return err
	case err != nil:
		durable.Logger(ctx).Warn("recall failed; the exchange goes on without memories", "err", err)
	}
	st.recalled = hits
	return nil
}

// extract starts the child run that remembers what is worth keeping of
// the exchange that just ended, and does not wait for it.
func (st *state) extract(ctx durable.Context, rt *Runtime, from int) {
	lt := st.reg.agent.LongTerm
	if lt == nil || lt.Extractor == nil || st.namespace() == "" {
		return
	}
	var b strings.Builder
	for _, m := range st.messages[from:] {
		if m.Role == providers.RoleUser || (m.Role == providers.RoleAssistant && m.Content != "") {
			b.WriteString(memory.Render(m, 4000))
			b.WriteString("\n")
		}
	}
	durable.StartChild(ctx, rt.workflow(st.reg.agent.Name+"-memory"), Input{Message: b.String(), User: st.user})
}

func lastUserText(msgs []providers.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == providers.RoleUser {
			return msgs[i].Content
		}
	}
	return ""
}

// memorySection is the system instructions' section of recalled memories.
func memorySection(ms []recalled) string {
	if len(ms) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n\n# What you remember about the user\n")
	for _, m := range ms {
		fmt.Fprintf(&b, "- %s (memory %s)\n", m.Text, m.Key)
	}
	return b.String()
}
