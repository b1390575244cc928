package providers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
)

// The JSON of requests and responses is what the journal holds: its shape
// must not change by accident, and it must round-trip.
func TestJSON(t *testing.T) {
	temp, seed, parallel := 0.0, 7, false
	tests := []struct {
		name string
		v    any
		want string
	}{{
		name: "minimal request",
		v:    &providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Hi"}}},
		want: `{"messages":[{"role":"user","content":"Hi"}]}`,
	}, {
		name: "full request",
		v: &providers.Request{
			Model: "m", System: "Be brief.",
			Messages: []providers.Message{
				{Role: providers.RoleUser, Content: "Hi"},
				{Role: providers.RoleAssistant, ToolCalls: []providers.ToolCall{{ID: "c1", Name: "f", Arguments: `{"a":`}}},
				{Role: providers.RoleTool, ToolCallID: "c1", Content: `{"error":"malformed arguments"}`},
			},
			Tools:      []providers.ToolDefinition{{Name: "f", Description: "F.", Parameters: json.RawMessage(`{"type":"object"}`)}},
			ToolChoice: providers.ToolChoice{Mode: providers.ToolChoiceNamed, Name: "f"},
			Settings:   providers.Settings{Temperature: &temp, MaxTokens: 10, Seed: &seed, ParallelToolCalls: &parallel},
			Output:     &providers.OutputSchema{Schema: json.RawMessage(`{"type":"string"}`), Strict: true},
		},
		want: `{"model":"m","system":"Be brief.","messages":[{"role":"user","content":"Hi"},` +
			`{"role":"assistant","tool_calls":[{"id":"c1","name":"f","arguments":"{\"a\":"}]},` +
			`{"role":"tool","content":"{\"error\":\"malformed arguments\"}","tool_call_id":"c1"}],` +
			`"tools":[{"name":"f","description":"F.","parameters":{"type":"object"}}],"tool_choice":{"mode":"named","name":"f"},` +
			`"settings":{"temperature":0,"max_tokens":10,"seed":7,"parallel_tool_calls":false},"output":{"schema":{"type":"string"},"strict":true}}`,
	}, {
		name: "response",
		v: &providers.Response{
			ID: "r", Model: "m", FinishReason: providers.FinishToolCalls,
			Message: providers.Message{Role: providers.RoleAssistant, Content: "Let me look.", ToolCalls: []providers.ToolCall{{ID: "c1", Name: "f", Arguments: "not json \xff"}}},
			Usage:   providers.Usage{InputTokens: 3, OutputTokens: 4, TotalTokens: 7, CachedInputTokens: 1},
		},
		want: `{"id":"r","model":"m","message":{"role":"assistant","content":"Let me look.","tool_calls":[{"id":"c1","name":"f","arguments":"not json \ufffd"}]},` +
			`"finish_reason":"tool_calls","usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7,"cached_input_tokens":1}}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(b), "JSON")
			back := tt.v
			switch tt.v.(type) {
			case *providers.Request:
				back = new(providers.Request)
			case *providers.Response:
				back = new(providers.Response)
			}
			require.NoError(t, json.Unmarshal(b, back))
			b2, _ := json.Marshal(back)
			assert.JSONEq(t, string(b), string(b2), "round trip")
		})
	}
}

// generateOnly is a Model without streaming.
type generateOnly func(context.Context, providers.Request) (providers.Response, error)

func (f generateOnly) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	return f(ctx, req)
}

func TestStreamFallback(t *testing.T) {
	m := generateOnly(func(context.Context, providers.Request) (providers.Response, error) {
		return providers.Response{Message: providers.Message{Role: providers.RoleAssistant, Content: "Checking.",
			ToolCalls: []providers.ToolCall{{ID: "a", Name: "f", Arguments: "{}"}, {ID: "b", Name: "g", Arguments: `{"x":1}`}}}}, nil
	})
	var got []string
	resp, err := providers.Stream(context.Background(), m, providers.Request{}, func(d providers.Delta) error {
		b, _ := json.Marshal(d)
		got = append(got, string(b))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "Checking.", resp.Message.Content)
	want := []string{
		`{"text":"Checking."}`,
		`{"tool_call":{"index":0,"id":"a","name":"f","arguments":"{}"}}`,
		`{"tool_call":{"index":1,"id":"b","name":"g","arguments":"{\"x\":1}"}}`,
	}
	assert.Equal(t, want, got, "deltas")
	stop := errors.New("stop")
	_, err = providers.Stream(context.Background(), m, providers.Request{}, func(providers.Delta) error { return stop })
	assert.ErrorIs(t, err, stop)
	resp, err = providers.Stream(context.Background(), m, providers.Request{}, nil)
	require.NoError(t, err, "nil callback")
	assert.Len(t, resp.Message.ToolCalls, 2, "nil callback")
}

func TestError(t *testing.T) {
	cause := errors.New("connection reset")
	tests := []struct {
		err       *providers.Error
		text      string
		retryable bool
	}{
		{&providers.Error{Kind: providers.ErrRateLimited, Provider: "openai", StatusCode: 429, Code: "rate_limit_exceeded", Message: "Slow down"}, "openai: rate limited (429 rate_limit_exceeded): Slow down", true},
		{&providers.Error{Kind: providers.ErrUnavailable, Provider: "openai", Err: cause}, "openai: provider unavailable: connection reset", true},
		{&providers.Error{Kind: providers.ErrTruncated, Provider: "openai", Message: "stream ended without [DONE]"}, "openai: truncated response: stream ended without [DONE]", true},
		{&providers.Error{Kind: providers.ErrInvalidRequest, Provider: "openai", StatusCode: 400}, "openai: invalid request (400)", false},
		{&providers.Error{Kind: providers.ErrAuth, Provider: "openai", Code: "invalid_api_key"}, "openai: not authorized (invalid_api_key)", false},
		{&providers.Error{Kind: providers.ErrQuotaExceeded, Provider: "openai"}, "openai: quota exceeded", false},
		{&providers.Error{Kind: providers.ErrContentPolicy, Provider: "openai"}, "openai: content policy violation", false},
	}
	for _, tt := range tests {
		err := fmt.Errorf("generate: %w", providers.Classify(tt.err))
		assert.Equal(t, tt.text, tt.err.Error())
		assert.ErrorIs(t, err, tt.err.Kind)
		assert.Equal(t, tt.retryable, tt.err.Retryable(), "%v: Retryable", tt.err)
		if tt.err.Err != nil {
			assert.ErrorIs(t, err, tt.err.Err, "an error matches its cause")
		}
	}
}

// Classify's marks are those the durable retry policy reads: a
// non-retryable error fails the activity at its first attempt, a retryable
// one is retried, after the wait asked for.
func TestClassifyRetries(t *testing.T) {
	tests := []struct {
		name     string
		err      *providers.Error
		attempts int32
		minWait  time.Duration
	}{
		{"invalid request", &providers.Error{Kind: providers.ErrInvalidRequest, Provider: "p"}, 1, 0},
		{"auth", &providers.Error{Kind: providers.ErrAuth, Provider: "p"}, 1, 0},
		{"unavailable", &providers.Error{Kind: providers.ErrUnavailable, Provider: "p"}, 3, 0},
		{"rate limited", &providers.Error{Kind: providers.ErrRateLimited, Provider: "p", RetryAfter: 100 * time.Millisecond}, 3, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var attempts atomic.Int32
			call := durable.NewActivity("generate", func(ctx context.Context, _ string) (string, error) {
				attempts.Add(1)
				return "", providers.Classify(tt.err)
			}, durable.ActivityOptions{RetryPolicy: durable.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: 3}})
			wf := durable.NewWorkflow("turn", func(ctx durable.Context, in string) (string, error) {
				return durable.Execute(ctx, call, in)
			})
			ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
			defer stop()
			store := inmem.New()
			worker := durable.NewWorker(store, durable.WorkerOptions{})
			worker.Register(wf)
			go worker.Run(ctx)
			client := durable.NewClient(store, durable.ClientOptions{})
			start := time.Now()
			run, err := wf.Start(ctx, client, "run-1", "hi")
			require.NoError(t, err)
			_, err = run.Result(ctx)
			require.Error(t, err, "the run succeeded")
			assert.Equal(t, tt.attempts, attempts.Load(), "attempts")
			assert.GreaterOrEqual(t, time.Since(start), tt.minWait, "time to finish, with the Retry-After waited")
		})
	}
}
