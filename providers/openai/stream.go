package openai

import (
	"maps"
	"slices"
	"strings"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/cairn-dev/cairn/providers"
)

// assembler builds a Response from the chunks of a stream. Only choice 0 is
// kept. Tool calls are assembled by their index: the first delta of an index
// carries the id and the name, the following ones pieces of the arguments,
// and the deltas of several calls may interleave.
type assembler struct {
	id, model string
	text      strings.Builder
	refusal   strings.Builder
	calls     map[int]*partialCall
	last      int // index of the call a delta without an index continues
	maxIndex  int // the highest index seen
	finish    providers.FinishReason
	usage     providers.Usage
}

type partialCall struct {
	id, name string
	args     strings.Builder
}

// add takes in one chunk, passing its deltas to fn (if not nil).
func (a *assembler) add(chunk goopenai.ChatCompletionStreamResponse, fn func(providers.Delta) error) error {
	if a.id == "" {
		a.id = chunk.ID
	}
	if a.model == "" {
		a.model = chunk.Model
	}
	if chunk.Usage != nil {
		a.usage = fromUsage(chunk.Usage)
	}
	for _, ch := range chunk.Choices {
		if ch.Index != 0 {
			continue
		}
		if ch.FinishReason != "" && ch.FinishReason != goopenai.FinishReasonNull {
			a.finish = providers.FinishReason(ch.FinishReason)
		}
		a.refusal.WriteString(ch.Delta.Refusal)
		if t := ch.Delta.Content; t != "" {
			a.text.WriteString(t)
			if err := emit(fn, providers.Delta{Text: t}); err != nil {
				return err
			}
		}
		for _, tc := range ch.Delta.ToolCalls {
			d := a.addCall(tc)
			if err := emit(fn, providers.Delta{ToolCall: &d}); err != nil {
				return err
			}
		}
	}
	return nil
}

func emit(fn func(providers.Delta) error, d providers.Delta) error {
	if fn == nil {
		return nil
	}
	return fn(d)
}

// addCall adds a tool-call delta and returns it as it is passed on. A delta
// without an index (some servers send whole calls so) starts a new call if
// it has an id of its own, and continues the last call otherwise.
func (a *assembler) addCall(tc goopenai.ToolCall) providers.ToolCallDelta {
	if a.calls == nil {
		a.calls = make(map[int]*partialCall)
	}
	i := a.last
	switch {
	case tc.Index != nil:
		i = *tc.Index
	case len(a.calls) == 0:
		i = 0
	case tc.ID != "" && tc.ID != a.calls[a.last].id:
		i = a.maxIndex + 1
	}
	a.last = i
	if len(a.calls) == 0 || i > a.maxIndex {
		a.maxIndex = i
	}
	c := a.calls[i]
	if c == nil {
		c = &partialCall{}
		a.calls[i] = c
	}
	if c.id == "" {
		c.id = tc.ID
	}
	if c.name == "" {
		c.name = tc.Function.Name
	}
	c.args.WriteString(tc.Function.Arguments)
	return providers.ToolCallDelta{Index: i, ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}
}

// response returns the assembled response of a stream that ended; done
// says whether it ended with [DONE]. Without both [DONE] and a finish
// reason the stream was cut off, and the answer is an ErrTruncated error.
func (a *assembler) response(done bool) (providers.Response, error) {
	if !done || a.finish == "" {
		msg := "stream ended without [DONE]"
		if a.finish == "" {
			msg = "stream ended without a finish reason"
		}
		return providers.Response{}, providers.Classify(&providers.Error{
			Kind: providers.ErrTruncated, Provider: provider, Message: msg,
		})
	}
	out := providers.Response{
		ID:           a.id,
		Model:        a.model,
		Message:      providers.Message{Role: providers.RoleAssistant, Content: a.text.String()},
		FinishReason: a.finish,
		Refusal:      a.refusal.String(),
		Usage:        a.usage,
	}
	idx := slices.Sorted(maps.Keys(a.calls))
	for n, i := range idx {
		c := a.calls[i]
		out.Message.ToolCalls = append(out.Message.ToolCalls, providers.ToolCall{
			ID: callID(c.id, n), Name: c.name, Arguments: c.args.String(),
		})
	}
	return out, nil
}
