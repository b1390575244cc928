package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/cairn-dev/cairn/providers"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.38.0"
	"go.opentelemetry.io/otel/trace"
)

// contentCache holds, when content is recorded, what a model or tool call
// was given (it is not journaled, only its hash is) until the span of its
// attempt is emitted: by the worker that ran it, if the same worker
// commits its result. Spans of attempts finished elsewhere lack it.
type contentCache struct {
	mu    sync.Mutex
	max   int
	m     map[trace.SpanID][]attribute.KeyValue
	order []trace.SpanID
}

func newContentCache(max int) *contentCache {
	return &contentCache{max: max, m: map[trace.SpanID][]attribute.KeyValue{}}
}

// put keeps attrs for the attempt whose span id is id, forgetting the
// oldest entries beyond the cache's size (attempts whose results went to
// another worker).
func (c *contentCache) put(id trace.SpanID, attrs []attribute.KeyValue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; !ok {
		c.order = append(c.order, id)
	}
	c.m[id] = attrs
	for len(c.order) > c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *contentCache) take(id trace.SpanID) ([]attribute.KeyValue, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	attrs, ok := c.m[id]
	delete(c.m, id)
	return attrs, ok
}

// recordModelInput keeps the request of the model call that ctx's attempt
// makes, for its span.
func (t *telemetry) recordModelInput(ctx context.Context, req providers.Request) {
	if t.content == nil {
		return
	}
	id := trace.SpanContextFromContext(ctx).SpanID()
	attrs := []attribute.KeyValue{semconv.GenAIInputMessagesKey.String(inputMessages(req.Messages))}
	if req.System != "" {
		attrs = append(attrs, semconv.GenAISystemInstructionsKey.String(mustJSON([]part{{Type: "text", Content: req.System}})))
	}
	t.content.put(id, attrs)
}

// recordToolInput keeps the arguments of the tool call that ctx's attempt
// makes, for its span.
func (t *telemetry) recordToolInput(ctx context.Context, arguments string) {
	if t.content == nil {
		return
	}
	t.content.put(trace.SpanContextFromContext(ctx).SpanID(),
		[]attribute.KeyValue{semconv.GenAIToolCallArgumentsKey.String(arguments)})
}

// Messages as the GenAI semantic conventions write them in
// gen_ai.input.messages and gen_ai.output.messages.
type (
	message struct {
		Role         string `json:"role"`
		Parts        []part `json:"parts"`
		FinishReason string `json:"finish_reason,omitempty"`
	}
	part struct {
		Type      string          `json:"type"`
		Content   string          `json:"content,omitempty"`
		ID        string          `json:"id,omitempty"`
		Name      string          `json:"name,omitempty"`
		Arguments json.RawMessage `json:"arguments,omitempty"`
		Response  string          `json:"response,omitempty"`
	}
)

func inputMessages(msgs []providers.Message) string {
	out := make([]message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, convMessage(m))
	}
	return mustJSON(out)
}

func outputMessages(resp providers.Response) string {
	m := convMessage(resp.Message)
	m.FinishReason = string(resp.FinishReason)
	return mustJSON([]message{m})
}

func convMessage(m providers.Message) message {
	out := message{Role: string(m.Role)}
	switch {
	case m.Role == providers.RoleTool:
		out.Parts = append(out.Parts, part{Type: "tool_call_response", ID: m.ToolCallID, Response: m.Content})
	case m.Content != "":
		out.Parts = append(out.Parts, part{Type: "text", Content: m.Content})
	}
	for _, c := range m.ToolCalls {
		args := json.RawMessage(c.Arguments)
		if !json.Valid(args) {
			args, _ = json.Marshal(c.Arguments)
		}
		out.Parts = append(out.Parts, part{Type: "tool_call", ID: c.ID, Name: c.Name, Arguments: args})
	}
	if out.Parts == nil {
		out.Parts = []part{}
	}
	return out
}

func mustJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", err.Error())
	}
	return string(data)
}
