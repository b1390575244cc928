package scripted

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

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
	if err != nil {
		t.Fatal(err)
	}
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
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("stream %v: error %v, want %v", stream, err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if b, _ := json.Marshal(got); string(b) != tt.want {
					t.Errorf("stream %v:\n got %s\nwant %s", stream, b, tt.want)
				}
				if stream {
					if text.String() != got.Message.Content {
						t.Errorf("deltas say %q, response %q", text.String(), got.Message.Content)
					}
					for i, c := range got.Message.ToolCalls {
						if args[i] != c.Arguments {
							t.Errorf("call %d: deltas say %q, response %q", i, args[i], c.Arguments)
						}
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
	if err != nil || got.Message.Content != "HI THERE" || got.Message.Role != providers.RoleAssistant || got.FinishReason != providers.FinishStop {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := m.Generate(context.Background(), providers.Request{Messages: []providers.Message{user("fail")}}); !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
}

func TestScriptIsNotShared(t *testing.T) {
	m := New(providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{ID: "c", Name: "f", Arguments: "{}"}}}})
	a, _ := m.Generate(context.Background(), providers.Request{})
	a.Message.ToolCalls[0].Name = "changed"
	b, _ := m.Generate(context.Background(), providers.Request{})
	if b.Message.ToolCalls[0].Name != "f" {
		t.Fatalf("a caller's change reached the script: %+v", b)
	}
}

func TestStreamStops(t *testing.T) {
	m := New(providers.Response{Message: providers.Message{Content: "one two three"}})
	stop := errors.New("stop")
	n := 0
	if _, err := m.Stream(context.Background(), providers.Request{}, func(providers.Delta) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("error %v after %d deltas", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Generate(ctx, providers.Request{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
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
		if got := words(tt.in); strings.Join(got, "|") != strings.Join(tt.words, "|") || len(got) != len(tt.words) {
			t.Errorf("words(%q) = %q, want %q", tt.in, got, tt.words)
		}
		if got := chunks(tt.in, 8); strings.Join(got, "|") != strings.Join(tt.chunk, "|") || len(got) != len(tt.chunk) {
			t.Errorf("chunks(%q) = %q, want %q", tt.in, got, tt.chunk)
		}
	}
}
