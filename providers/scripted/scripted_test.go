package scripted

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/providers"
)

func user(text string) providers.Message {
	return providers.Message{Role: providers.RoleUser, Content: text}
}

func TestScript(t *testing.T) {
	m := New(
		providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{Name: "add", Arguments: `{"a":1,"b":2}`}}}},
		providers.Response{Message: providers.Message{Content: "3"}, Usage: providers.Usage{InputTokens: 1, OutputTokens: 1, TotalTokens: 2}},
	)
	turn0 := providers.Request{Messages: []providers.Message{user("1+2?")}}
	first, err := m.Generate(context.Background(), turn0)
	require.NoError(t, err)
	require.NotEmpty(t, first.Message.ToolCalls)
	turn1 := turn0
	turn1.Messages = append(turn1.Messages, first.Message, providers.Message{Role: providers.RoleTool, ToolCallID: first.Message.ToolCalls[0].ID, Content: "3"})
	tests := []struct {
		name    string
		req     providers.Request
		want    string // the response as JSON
		wantErr error
	}{
		{"turn 0", turn0, `{"id":"scripted-0","model":"scripted","message":{"role":"assistant","tool_calls":[{"id":"call_0_0","name":"add","arguments":"{\"a\":1,\"b\":2}"}]},"finish_reason":"tool_calls","usage":{"input_tokens":1,"output_tokens":4,"total_tokens":5}}`, nil},
		{"turn 0 again", turn0, `{"id":"scripted-0","model":"scripted","message":{"role":"assistant","tool_calls":[{"id":"call_0_0","name":"add","arguments":"{\"a\":1,\"b\":2}"}]},"finish_reason":"tool_calls","usage":{"input_tokens":1,"output_tokens":4,"total_tokens":5}}`, nil},
		{"turn 1, usage as scripted", turn1, `{"id":"scripted-1","model":"scripted","message":{"role":"assistant","content":"3"},"finish_reason":"stop","usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}`, nil},
		{"past the end", providers.Request{Messages: append(turn1.Messages, providers.Message{Role: providers.RoleAssistant, Content: "3"}, user("again"))}, "", ErrScriptExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, stream := range []bool{false, true} {
				var got providers.Response
				var err error
				var text strings.Builder
				args := map[int]string{}
				if stream {
					got, err = m.Stream(context.Background(), tt.req, func(d providers.Delta) error {
						text.WriteString(d.Text)
						if d.ToolCall != nil {
							args[d.ToolCall.Index] += d.ToolCall.Arguments
						}
						return nil
					})
				} else {
					got, err = m.Generate(context.Background(), tt.req)
				}
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr, "stream %v", stream)
					continue
				}
				require.NoError(t, err, "stream %v", stream)
				b, _ := json.Marshal(got)
				assert.JSONEq(t, tt.want, string(b), "stream %v", stream)
				if stream {
					assert.Equal(t, got.Message.Content, text.String(), "the deltas' text")
					for i, c := range got.Message.ToolCalls {
						assert.Equal(t, c.Arguments, args[i], "call %d: the deltas' arguments", i)
					}
				}
			}
		})
	}
}

func TestFunc(t *testing.T) {
	boom := errors.New("boom")
	m := Func(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		last := req.Messages[len(req.Messages)-1].Content
		if last == "fail" {
			return providers.Response{}, boom
		}
		return providers.Response{Message: providers.Message{Content: strings.ToUpper(last)}}, nil
	})
	got, err := m.Generate(context.Background(), providers.Request{Messages: []providers.Message{user("hi there")}})
	require.NoError(t, err)
	assert.Equal(t, "HI THERE", got.Message.Content)
	assert.Equal(t, providers.RoleAssistant, got.Message.Role)
	assert.Equal(t, providers.FinishStop, got.FinishReason)
	_, err = m.Generate(context.Background(), providers.Request{Messages: []providers.Message{user("fail")}})
	assert.ErrorIs(t, err, boom)
}

func TestScriptIsNotShared(t *testing.T) {
	m := New(providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{ID: "c", Name: "f", Arguments: "{}"}}}})
	a, err := m.Generate(context.Background(), providers.Request{})
	require.NoError(t, err)
	a.Message.ToolCalls[0].Name = "changed"
	b, err := m.Generate(context.Background(), providers.Request{})
	require.NoError(t, err)
	assert.Equal(t, "f", b.Message.ToolCalls[0].Name, "a caller's change reached the script")
}

func TestStreamStops(t *testing.T) {
	m := New(providers.Response{Message: providers.Message{Content: "one two three"}})
	stop := errors.New("stop")
	n := 0
	_, err := m.Stream(context.Background(), providers.Request{}, func(providers.Delta) error { n++; return stop })
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 1, n, "deltas delivered, the first one stops the stream")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = m.Generate(ctx, providers.Request{})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestSplitting(t *testing.T) {
	tests := []struct {
		in    string
		words []string
		chunk []string
	}{
		{"", nil, nil},
		{"one", []string{"one"}, []string{"one"}},
		{"Hello,  wide\nworld ", []string{"Hello,  ", "wide\n", "world "}, []string{"Hello,  ", "wide\nwor", "ld "}},
		{`{"city":"Zürich"}`, []string{`{"city":"Zürich"}`}, []string{`{"city":`, `"Zürich`, `"}`}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.words, words(tt.in), "words(%q)", tt.in)
		assert.Equal(t, tt.chunk, chunks(tt.in, 8), "chunks(%q)", tt.in)
	}
}
