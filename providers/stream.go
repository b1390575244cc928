package providers

import (
	"context"
	"fmt"
)

// Stream generates with m, delivering the answer to fn as it comes when m is
// a StreamingModel. Otherwise it calls Generate and then delivers the whole
// answer to fn: first the text, then one delta per tool call. Either way fn
// sees deltas whose concatenation is the returned Response, and a nil fn
// just generates.
func Stream(ctx context.Context, m Model, req Request, fn func(Delta) error) (Response, error) {
	if fn == nil {
		return m.Generate(ctx, req)
	}
	if sm, ok := m.(StreamingModel); ok {
		return sm.Stream(ctx, req, fn)
	}
	resp, err := m.Generate(ctx, req)
	if err != nil {
		return resp, err
	}
	for _, d := range wholeDeltas(resp) {
		if err := fn(d); err != nil {
			return Response{}, fmt.Errorf("stream callback: %w", err)
		}
	}
	return resp, nil
}

// wholeDeltas returns resp as a sequence of deltas in one piece per part: the
// text, if any, then each tool call whole, indexed by its position.
func wholeDeltas(resp Response) []Delta {
	var ds []Delta
	if resp.Message.Content != "" {
		ds = append(ds, Delta{Text: resp.Message.Content})
	}
	for i, c := range resp.Message.ToolCalls {
		ds = append(ds, Delta{ToolCall: &ToolCallDelta{Index: i, ID: c.ID, Name: c.Name, Arguments: c.Arguments}})
	}
	return ds
}
