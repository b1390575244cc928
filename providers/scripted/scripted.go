// Package scripted is a deterministic providers.Model for tests and
// examples: it plays a script of responses, or computes each response with a
// function of the request, and it streams them in small deltas as a real
// model would.
//
// A script is indexed by the conversation, not by a counter: the response
// to a request is the one for its turn, the number of assistant messages
// the request already holds. So the model answers the same request the same
// way every time, is safe for concurrent use, and carries on correctly in a
// process that took over a run after a crash.
package scripted

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/providers"
)

var (
	_ providers.Model          = (*Model)(nil)
	_ providers.StreamingModel = (*Model)(nil)
	_ providers.Describer      = (*Model)(nil)
)

// ErrScriptExhausted is returned, marked non-retryable, when a request's
// turn is past the end of the script.
var ErrScriptExhausted = errors.New("script exhausted")

// argChunk is the size in bytes of the argument pieces streamed.
const argChunk = 8

// Name is the model name of responses that do not set one.
const Name = "scripted"

// Model is a scripted model. It is safe for concurrent use.
type Model struct {
	responses []providers.Response
	fn        func(context.Context, providers.Request) (providers.Response, error)
}

// Describe implements providers.Describer: provider "cairn.scripted",
// model "scripted".
func (m *Model) Describe() providers.Info {
	return providers.Info{Provider: "cairn.scripted", Model: "scripted"}
}

// New returns a model that answers turn n (a request holding n assistant
// messages) with responses[n], and fails with ErrScriptExhausted from turn
// len(responses) on.
func New(responses ...providers.Response) *Model {
	return &Model{responses: responses}
}

// Func returns a model that answers with fn. fn should be deterministic: a
// function of the request only.
func Func(fn func(ctx context.Context, req providers.Request) (providers.Response, error)) *Model {
	return &Model{fn: fn}
}

// Generate returns the scripted response for req, completed with what the
// script left out: role assistant, model name, an id "scripted-<turn>", ids
// of tool calls "call_<turn>_<i>", finish reason tool_calls or stop, and
// token usage estimated at one token per four bytes.
func (m *Model) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	if err := ctx.Err(); err != nil {
		return providers.Response{}, err
	}
	turn := Turn(req)
	var resp providers.Response
	if m.fn != nil {
		var err error
		if resp, err = m.fn(ctx, req); err != nil {
			return providers.Response{}, err
		}
	} else {
		if turn >= len(m.responses) {
			return providers.Response{}, durable.NonRetryable(fmt.Errorf("scripted: turn %d of a script of %d: %w", turn, len(m.responses), ErrScriptExhausted))
		}
		resp = m.responses[turn]
	}
	return complete(resp, req, turn), nil
}

// Stream is Generate, delivering the response to fn first: the text in
// pieces of a word each, with the spaces that follow it, then each tool
// call, its id and name with the first piece of its arguments, in pieces of
// 8 bytes.
func (m *Model) Stream(ctx context.Context, req providers.Request, fn func(providers.Delta) error) (providers.Response, error) {
	resp, err := m.Generate(ctx, req)
	if err != nil {
		return providers.Response{}, err
	}
	for _, d := range deltas(resp) {
		if err := ctx.Err(); err != nil {
			return providers.Response{}, err
		}
		if err := fn(d); err != nil {
			return providers.Response{}, fmt.Errorf("scripted: stream callback: %w", err)
		}
	}
	return resp, nil
}

// Turn is the turn of a request: the number of assistant messages in it.
func Turn(req providers.Request) int {
	n := 0
	for _, msg := range req.Messages {
		if msg.Role == providers.RoleAssistant {
			n++
		}
	}
	return n
}

// complete fills in what the script left out, on a copy that shares no
// memory with the script.
func complete(resp providers.Response, req providers.Request, turn int) providers.Response {
	resp.Message.Role = providers.RoleAssistant
	resp.Message.ToolCalls = append([]providers.ToolCall(nil), resp.Message.ToolCalls...)
	for i := range resp.Message.ToolCalls {
		if resp.Message.ToolCalls[i].ID == "" {
			resp.Message.ToolCalls[i].ID = fmt.Sprintf("call_%d_%d", turn, i)
		}
	}
	if resp.Model == "" {
		resp.Model = Name
	}
	if resp.ID == "" {
		resp.ID = fmt.Sprintf("scripted-%d", turn)
	}
	if resp.FinishReason == "" {
		resp.FinishReason = providers.FinishStop
		if len(resp.Message.ToolCalls) > 0 {
			resp.FinishReason = providers.FinishToolCalls
		}
	}
	if resp.Usage == (providers.Usage{}) {
		in := len(req.System)
		for _, t := range req.Tools {
			in += len(t.Name) + len(t.Description) + len(t.Parameters)
		}
		for _, msg := range req.Messages {
			in += messageBytes(msg)
		}
		resp.Usage.InputTokens = tokens(in)
		resp.Usage.OutputTokens = tokens(messageBytes(resp.Message))
		resp.Usage.TotalTokens = resp.Usage.InputTokens + resp.Usage.OutputTokens
	}
	return resp
}

func messageBytes(m providers.Message) int {
	n := len(m.Content)
	for _, c := range m.ToolCalls {
		n += len(c.Name) + len(c.Arguments)
	}
	return n
}

// tokens estimates the tokens of n bytes of text: one per four, at least one.
func tokens(n int) int { return max(1, (n+3)/4) }

// deltas splits resp into the pieces Stream delivers.
func deltas(resp providers.Response) []providers.Delta {
	var ds []providers.Delta
	for _, w := range words(resp.Message.Content) {
		ds = append(ds, providers.Delta{Text: w})
	}
	for i, c := range resp.Message.ToolCalls {
		pieces := chunks(c.Arguments, argChunk)
		if len(pieces) == 0 {
			pieces = []string{""}
		}
		for j, p := range pieces {
			d := &providers.ToolCallDelta{Index: i, Arguments: p}
			if j == 0 {
				d.ID, d.Name = c.ID, c.Name
			}
			ds = append(ds, providers.Delta{ToolCall: d})
		}
	}
	return ds
}

// words splits s after each run of spaces, so the pieces concatenate to s.
func words(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexAny(s, " \n\t")
		if i < 0 {
			return append(out, s)
		}
		j := i
		for j < len(s) && strings.ContainsRune(" \n\t", rune(s[j])) {
			j++
		}
		out = append(out, s[:j])
		s = s[j:]
	}
	return out
}

// chunks splits s into pieces of about n bytes, never inside a UTF-8
// sequence.
func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		if cut == 0 {
			cut = n
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}
