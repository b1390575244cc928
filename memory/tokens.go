package memory

import (
	"github.com/cairn-dev/cairn/providers"
)

// Tokenizer counts the tokens of a text as a model's tokenizer would.
//
// Count must be deterministic: the same text gives the same count in every
// process of a deployment, because compaction decisions made from counts
// are replayed. Changing the tokenizer of running conversations is a
// deploy, as changing their policy is. It must be safe for concurrent use.
//
// memory/tiktoken has OpenAI's encodings; without one, a Policy uses
// Approx.
type Tokenizer interface {
	Count(text string) int
}

// Approx is a Tokenizer that estimates a token per four bytes, the
// average of English text in OpenAI's encodings. It is rough for code,
// JSON and other languages; a Policy corrects it with the token counts
// the provider reports (see Policy.Plan).
type Approx struct{}

// Count returns len(text)/4, rounded up.
func (Approx) Count(text string) int { return (len(text) + 3) / 4 }

// Overheads of the chat format, in tokens, as OpenAI's documentation
// counts them: each message costs its text and about four tokens of
// framing, each request about three to prime the answer, and each tool
// definition its JSON and a few more.
const (
	perRequest  = 3
	perMessage  = 4
	perToolCall = 4
	perTool     = 8
)

// counter counts the tokens of requests and messages.
type counter struct{ tok Tokenizer }

func (c counter) message(m providers.Message) int {
	n := perMessage + c.tok.Count(string(m.Role)) + c.tok.Count(m.Content)
	for _, tc := range m.ToolCalls {
		n += perToolCall + c.tok.Count(tc.ID) + c.tok.Count(tc.Name) + c.tok.Count(tc.Arguments)
	}
	if m.ToolCallID != "" {
		n += c.tok.Count(m.ToolCallID)
	}
	return n
}

// fixed counts what a request costs besides its messages: the system
// instructions, the tools and the output schema.
func (c counter) fixed(req providers.Request) int {
	n := perRequest
	if req.System != "" {
		n += perMessage + c.tok.Count(req.System)
	}
	for _, t := range req.Tools {
		n += perTool + c.tok.Count(t.Name) + c.tok.Count(t.Description) + c.tok.Count(string(t.Parameters))
	}
	if req.Output != nil {
		n += perTool + c.tok.Count(req.Output.Name) + c.tok.Count(req.Output.Description) + c.tok.Count(string(req.Output.Schema))
	}
	return n
}

func (c counter) request(req providers.Request) int {
	n := c.fixed(req)
	for _, m := range req.Messages {
		n += c.message(m)
	}
	return n
}
