package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/providers"
)

// reply is what the test server answers: a status, headers and a body. A
// body of SSE events is written an event at a time, flushed.
type reply struct {
	status int
	header map[string]string
	body   string
}

// seen is what the test server received.
type seen struct {
	mu     sync.Mutex
	path   string
	query  string
	header http.Header
	body   []byte
}

func (s *seen) field(t *testing.T, name string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(s.body, &m), "request body %q", s.body)
	return compact(t, m[name])
}

func compact(t *testing.T, raw []byte) string {
	t.Helper()
	if raw == nil {
		return ""
	}
	var b bytes.Buffer
	require.NoError(t, json.Compact(&b, raw), "compact %q", raw)
	return b.String()
}

// server starts a Chat Completions server on loopback that answers every
// request with r, and a Model that talks to it.
func server(t *testing.T, r reply, opts ...Option) (*Model, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		s.mu.Lock()
		s.path, s.query, s.header, s.body = req.URL.Path, req.URL.RawQuery, req.Header.Clone(), body
		s.mu.Unlock()
		for k, v := range r.header {
			w.Header().Set(k, v)
		}
		if r.status == 0 {
			r.status = http.StatusOK
		}
		w.WriteHeader(r.status)
		for _, ev := range strings.SplitAfter(r.body, "\n\n") {
			io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	m, err := New("gpt-test", append([]Option{WithAPIKey("sk-test"), WithBaseURL(srv.URL + "/v1")}, opts...)...)
	require.NoError(t, err)
	return m, s
}

// sse renders chunks as server-sent events, ending with [DONE].
func sse(chunks ...string) string {
	var b strings.Builder
	for _, c := range chunks {
		b.WriteString("data: " + c + "\n\n")
	}
	b.WriteString("data: [DONE]\n\n")
	return b.String()
}

func ptr[T any](v T) *T { return &v }

var weatherTools = []providers.ToolDefinition{
	{Name: "get_weather", Description: "Weather in a city.", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)},
	{Name: "get_time", Description: "Time in a zone."},
}

func TestGenerate(t *testing.T) {
	conversation := []providers.Message{
		{Role: providers.RoleUser, Content: "Weather and time in Paris?"},
		{Role: providers.RoleAssistant, ToolCalls: []providers.ToolCall{
			{ID: "call_a", Name: "get_weather", Arguments: `{"city":"Paris"}`},
			{ID: "call_b", Name: "get_time", Arguments: `{}`},
		}},
		{Role: providers.RoleTool, ToolCallID: "call_a", Content: `{"temp_c":18}`},
		{Role: providers.RoleTool, ToolCallID: "call_b", Content: `"14:05"`},
	}
	tests := []struct {
		name       string
		req        providers.Request
		reply      string
		wantFields map[string]string // top-level request fields, compact JSON; "" means absent
		want       providers.Response
	}{{
		name: "text",
		req:  providers.Request{System: "Be brief.", Messages: []providers.Message{{Role: providers.RoleUser, Content: "Hi"}}},
		reply: `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-test-2024",
			"choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],
			"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,
				"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":1}}}`,
		wantFields: map[string]string{
			"model":       `"gpt-test"`,
			"messages":    `[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]`,
			"tools":       "",
			"tool_choice": "",
			"stream":      "false",
		},
		want: providers.Response{
			ID: "chatcmpl-1", Model: "gpt-test-2024", FinishReason: providers.FinishStop,
			Message: providers.Message{Role: providers.RoleAssistant, Content: "Hello!"},
			Usage:   providers.Usage{InputTokens: 12, OutputTokens: 3, TotalTokens: 15, CachedInputTokens: 8, ReasoningTokens: 1},
		},
	}, {
		name: "parallel tool calls",
		req: providers.Request{
			Messages: conversation[:1], Tools: weatherTools,
			ToolChoice: providers.ToolChoice{Mode: providers.ToolChoiceRequired},
		},
		reply: `{"id":"chatcmpl-2","model":"gpt-test","choices":[{"index":0,"message":{"role":"assistant","content":null,
			"tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
			{"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":"tool_calls"}],
			"usage":{"prompt_tokens":40,"completion_tokens":20,"total_tokens":60}}`,
		wantFields: map[string]string{
			"tools": `[{"function":{"name":"get_weather","description":"Weather in a city.","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},"type":"function"},` +
				`{"function":{"name":"get_time","description":"Time in a zone.","parameters":{"type":"object","properties":{}}},"type":"function"}]`,
			"tool_choice":         `"required"`,
			"parallel_tool_calls": "",
		},
		want: providers.Response{
			ID: "chatcmpl-2", Model: "gpt-test", FinishReason: providers.FinishToolCalls,
			Message: providers.Message{Role: providers.RoleAssistant, ToolCalls: conversation[1].ToolCalls},
			Usage:   providers.Usage{InputTokens: 40, OutputTokens: 20, TotalTokens: 60},
		},
	}, {
		name: "tool results and a named tool",
		req: providers.Request{
			Messages: conversation, Tools: weatherTools,
			ToolChoice: providers.ToolChoice{Mode: providers.ToolChoiceNamed, Name: "get_time"},
			Settings:   providers.Settings{ParallelToolCalls: ptr(false), MaxTokens: 100, Seed: ptr(7), Stop: []string{"END"}},
		},
		reply: `{"id":"chatcmpl-3","model":"gpt-test","choices":[{"index":0,"message":{"role":"assistant","content":"18°C, 14:05."},"finish_reason":"stop"}]}`,
		wantFields: map[string]string{
			"messages": `[{"role":"user","content":"Weather and time in Paris?"},` +
				`{"role":"assistant","tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]},` +
				`{"role":"tool","content":"{\"temp_c\":18}","tool_call_id":"call_a"},{"role":"tool","content":"\"14:05\"","tool_call_id":"call_b"}]`,
			"tool_choice":           `{"type":"function","function":{"name":"get_time"}}`,
			"parallel_tool_calls":   "false",
			"max_completion_tokens": "100",
			"seed":                  "7",
			"stop":                  `["END"]`,
		},
		want: providers.Response{
			ID: "chatcmpl-3", Model: "gpt-test", FinishReason: providers.FinishStop,
			Message: providers.Message{Role: providers.RoleAssistant, Content: "18°C, 14:05."},
		},
	}, {
		name: "structured output",
		req: providers.Request{
			Model:    "gpt-other",
			Messages: []providers.Message{{Role: providers.RoleUser, Content: "Extract."}},
			Output:   &providers.OutputSchema{Name: "city", Schema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}`), Strict: true},
			Settings: providers.Settings{Temperature: ptr(0.0), TopP: ptr(0.5)},
		},
		reply: `{"id":"chatcmpl-4","model":"gpt-other","choices":[{"index":0,"message":{"role":"assistant","content":"{\"name\":\"Paris\"}"},"finish_reason":"stop"}]}`,
		wantFields: map[string]string{
			"model":           `"gpt-other"`,
			"response_format": `{"type":"json_schema","json_schema":{"name":"city","schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false},"strict":true}}`,
			"temperature":     "1e-45",
			"top_p":           "0.5",
		},
		want: providers.Response{
			ID: "chatcmpl-4", Model: "gpt-other", FinishReason: providers.FinishStop,
			Message: providers.Message{Role: providers.RoleAssistant, Content: `{"name":"Paris"}`},
		},
	}, {
		name: "a server that sends no call ids",
		req:  providers.Request{Messages: conversation[:1], Tools: weatherTools},
		reply: `{"choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"get_time","arguments":"{}"}}]},
			"finish_reason":"tool_calls"}]}`,
		wantFields: map[string]string{"tool_choice": ""},
		want: providers.Response{
			FinishReason: providers.FinishToolCalls,
			Message: providers.Message{Role: providers.RoleAssistant, ToolCalls: []providers.ToolCall{
				{ID: "call_0", Name: "get_time", Arguments: "{}"},
			}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, s := server(t, reply{header: map[string]string{"Content-Type": "application/json"}, body: tt.reply})
			got, err := m.Generate(context.Background(), tt.req)
			require.NoError(t, err)
			assert.Equal(t, "/v1/chat/completions", s.path)
			assert.Equal(t, "Bearer sk-test", s.header.Get("Authorization"))
			for name, want := range tt.wantFields {
				assert.Equal(t, want, s.field(t, name), "request %s", name)
			}
			assertResponse(t, got, tt.want)
		})
	}
}

func assertResponse(t *testing.T, got, want providers.Response) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	assert.JSONEq(t, string(w), string(g), "response")
	var back providers.Response
	require.NoError(t, json.Unmarshal(g, &back), "response does not round-trip")
	b, _ := json.Marshal(back)
	assert.JSONEq(t, string(g), string(b), "response round trip")
}

func TestStream(t *testing.T) {
	text := []string{
		`{"id":"chatcmpl-s","object":"chat.completion.chunk","model":"gpt-test","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-s","model":"gpt-test","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}`,
		`{"id":"chatcmpl-s","model":"gpt-test","choices":[{"index":0,"delta":{"content":"lo, Zü"},"finish_reason":null}]}`,
		`{"id":"chatcmpl-s","model":"gpt-test","choices":[{"index":0,"delta":{"content":"rich!"},"finish_reason":"stop"}]}`,
	}
	usage := `{"id":"chatcmpl-s","model":"gpt-test","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}`
	calls := []string{
		`{"id":"chatcmpl-t","model":"gpt-test","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}`,
		`{"id":"chatcmpl-t","model":"gpt-test","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}}]}`,
		`{"id":"chatcmpl-t","model":"gpt-test","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"Eu"}}]}}]}`,
		`{"id":"chatcmpl-t","model":"gpt-test","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Zü"}}]}}]}`,
		`{"id":"chatcmpl-t","model":"gpt-test","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"rope/Paris\"}"}},{"index":0,"function":{"arguments":"rich\"}"}}]}}]}`,
		`{"id":"chatcmpl-t","model":"gpt-test","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
	}
	wantCalls := []providers.ToolCall{
		{ID: "call_a", Name: "get_weather", Arguments: `{"city":"Zürich"}`},
		{ID: "call_b", Name: "get_time", Arguments: `{"tz":"Europe/Paris"}`},
	}
	textResp := providers.Response{
		ID: "chatcmpl-s", Model: "gpt-test", FinishReason: providers.FinishStop,
		Message: providers.Message{Role: providers.RoleAssistant, Content: "Hello, Zürich!"},
	}
	withUsage := textResp
	withUsage.Usage = providers.Usage{InputTokens: 9, OutputTokens: 4, TotalTokens: 13}
	callsResp := providers.Response{
		ID: "chatcmpl-t", Model: "gpt-test", FinishReason: providers.FinishToolCalls,
		Message: providers.Message{Role: providers.RoleAssistant, ToolCalls: wantCalls},
		Usage:   withUsage.Usage,
	}
	tests := []struct {
		name   string
		reply  reply
		want   providers.Response
		deltas int           // deltas passed to the callback
		kind   error         // the error kind expected, nil for success
		after  time.Duration // the Retry-After expected
	}{
		{name: "text with usage last", reply: reply{body: sse(append(text, usage)...)}, want: withUsage, deltas: 3},
		{name: "no usage", reply: reply{body: sse(text...)}, want: textResp, deltas: 3},
		{name: "keep-alive comments", reply: reply{body: ": ping\n\ndata: " + text[0] + "\n\n: ping\n\n" + sse(text[1:]...)}, want: textResp, deltas: 3},
		{name: "interleaved tool calls", reply: reply{body: sse(append(calls, usage)...)}, want: callsResp, deltas: 6},
		{name: "tool calls without index", reply: reply{body: sse(
			`{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Zürich\"}"}}]}}]}`,
			`{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"tz\":"}}]}}]}`,
			`{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"\"Europe/Paris\"}"}}]},"finish_reason":"tool_calls"}]}`,
		)}, want: providers.Response{FinishReason: providers.FinishToolCalls, Message: providers.Message{Role: providers.RoleAssistant, ToolCalls: wantCalls}}, deltas: 3},
		{name: "no [DONE]", reply: reply{body: strings.TrimSuffix(sse(text...), "data: [DONE]\n\n")}, kind: providers.ErrTruncated},
		{name: "no finish reason", reply: reply{body: sse(text[:3]...)}, kind: providers.ErrTruncated},
		{name: "cut mid-line", reply: reply{body: "data: " + text[1] + "\n\ndata: {\"id\":\"chatcmpl-s\",\"choi"}, kind: providers.ErrTruncated},
		{name: "not JSON", reply: reply{body: sse(text[0], `{"id":`)}, kind: providers.ErrTruncated},
		{name: "error event", reply: reply{body: "data: " + text[1] + "\n\ndata: {\"error\":{\"message\":\"The server is overloaded\",\"type\":\"server_error\"}}\n\n"}, kind: providers.ErrUnavailable},
		{name: "rate limited", reply: reply{status: 429, header: map[string]string{"Retry-After": "3"}, body: `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`}, kind: providers.ErrRateLimited, after: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reply.header == nil {
				tt.reply.header = map[string]string{"Content-Type": "text/event-stream"}
			}
			m, s := server(t, tt.reply)
			req := providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Go"}}, Tools: weatherTools}
			var text strings.Builder
			args := map[int]string{}
			n := 0
			got, err := m.Stream(context.Background(), req, func(d providers.Delta) error {
				n++
				text.WriteString(d.Text)
				if d.ToolCall != nil {
					args[d.ToolCall.Index] += d.ToolCall.Arguments
				}
				return nil
			})
			assert.Equal(t, "true", s.field(t, "stream"), "request stream")
			assert.Equal(t, `{"include_usage":true}`, s.field(t, "stream_options"), "request stream_options")
			if tt.kind != nil {
				assertKind(t, err, tt.kind, tt.after)
				return
			}
			require.NoError(t, err)
			assertResponse(t, got, tt.want)
			assert.Equal(t, tt.deltas, n, "deltas")
			assert.Equal(t, got.Message.Content, text.String(), "the deltas' text")
			for i, c := range got.Message.ToolCalls {
				assert.Equal(t, c.Arguments, args[i], "call %d: the deltas' arguments", i)
			}
		})
	}
}

func assertKind(t *testing.T, err, kind error, after time.Duration) {
	t.Helper()
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	require.ErrorIs(t, err, kind)
	assert.Equal(t, after, pe.RetryAfter, "RetryAfter")
	assert.NotContains(t, err.Error(), "sk-test", "the error shows the API key")
}

func TestErrors(t *testing.T) {
	apiErr := func(msg, typ, code string) string {
		return `{"error":{"message":"` + msg + `","type":"` + typ + `","param":null,"code":"` + code + `"}}`
	}
	tests := []struct {
		name      string
		reply     reply
		kind      error
		retryable bool
		after     time.Duration
		code      string
	}{
		{"bad request", reply{status: 400, body: apiErr("Invalid schema", "invalid_request_error", "invalid_value")}, providers.ErrInvalidRequest, false, 0, "invalid_value"},
		{"unknown model", reply{status: 404, body: apiErr("The model does not exist", "invalid_request_error", "model_not_found")}, providers.ErrInvalidRequest, false, 0, "model_not_found"},
		{"content policy", reply{status: 400, body: apiErr("Rejected by the safety system", "invalid_request_error", "content_policy_violation")}, providers.ErrContentPolicy, false, 0, "content_policy_violation"},
		{"azure content filter", reply{status: 400, body: `{"error":{"message":"filtered","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}`}, providers.ErrContentPolicy, false, 0, "content_filter"},
		{"bad key", reply{status: 401, body: apiErr("Incorrect API key provided", "invalid_request_error", "invalid_api_key")}, providers.ErrAuth, false, 0, "invalid_api_key"},
		{"forbidden", reply{status: 403, body: apiErr("Country not supported", "request_forbidden", "unsupported_country_region_territory")}, providers.ErrAuth, false, 0, "unsupported_country_region_territory"},
		{"rate limit, seconds", reply{status: 429, header: map[string]string{"Retry-After": "20"}, body: apiErr("Rate limit reached", "requests", "rate_limit_exceeded")}, providers.ErrRateLimited, true, 20 * time.Second, "rate_limit_exceeded"},
		{"rate limit, ms", reply{status: 429, header: map[string]string{"Retry-After": "2", "Retry-After-Ms": "1500"}, body: apiErr("Rate limit reached", "tokens", "rate_limit_exceeded")}, providers.ErrRateLimited, true, 1500 * time.Millisecond, "rate_limit_exceeded"},
		{"rate limit, no wait", reply{status: 429, body: apiErr("Slow down", "requests", "")}, providers.ErrRateLimited, true, 0, "requests"},
		{"quota", reply{status: 429, body: apiErr("You exceeded your current quota", "insufficient_quota", "insufficient_quota")}, providers.ErrQuotaExceeded, false, 0, "insufficient_quota"},
		{"server error", reply{status: 500, body: apiErr("The server had an error", "server_error", "")}, providers.ErrUnavailable, true, 0, "server_error"},
		{"overloaded", reply{status: 503, header: map[string]string{"Retry-After": "1"}, body: apiErr("Overloaded", "server_error", "")}, providers.ErrUnavailable, true, time.Second, "server_error"},
		{"proxy page", reply{status: 502, header: map[string]string{"Content-Type": "text/html"}, body: "<html>Bad Gateway</html>"}, providers.ErrUnavailable, true, 0, ""},
		{"no choice", reply{body: `{"id":"x","choices":[]}`}, providers.ErrTruncated, true, 0, ""},
		{"not JSON", reply{body: `{"id":"x","choi`}, providers.ErrTruncated, true, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := server(t, tt.reply)
			_, err := m.Generate(context.Background(), providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Hi"}}})
			assertKind(t, err, tt.kind, tt.after)
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.retryable, pe.Retryable(), "Retryable")
			assert.Equal(t, tt.code, pe.Code, "Code")
			assert.Equal(t, "openai", pe.Provider, "Provider")
			if tt.reply.status != 0 {
				assert.Equal(t, tt.reply.status, pe.StatusCode, "StatusCode")
			}
		})
	}
}

func TestInvalidRequests(t *testing.T) {
	m, s := server(t, reply{body: "{}"})
	user := []providers.Message{{Role: providers.RoleUser, Content: "Hi"}}
	tests := []struct {
		name string
		req  providers.Request
	}{
		{"no messages", providers.Request{}},
		{"unknown role", providers.Request{Messages: []providers.Message{{Role: "system", Content: "x"}}}},
		{"tool result without id", providers.Request{Messages: []providers.Message{{Role: providers.RoleTool, Content: "x"}}}},
		{"bad parameters", providers.Request{Messages: user, Tools: []providers.ToolDefinition{{Name: "t", Parameters: json.RawMessage(`{`)}}}},
		{"bad output schema", providers.Request{Messages: user, Output: &providers.OutputSchema{Schema: json.RawMessage(`nope`)}}},
		{"named tool missing", providers.Request{Messages: user, Tools: weatherTools, ToolChoice: providers.ToolChoice{Mode: providers.ToolChoiceNamed, Name: "nope"}}},
		{"unknown tool choice", providers.Request{Messages: user, Tools: weatherTools, ToolChoice: providers.ToolChoice{Mode: "sometimes"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Generate(context.Background(), tt.req)
			assertKind(t, err, providers.ErrInvalidRequest, 0)
		})
	}
	assert.Nil(t, s.body, "an invalid request reached the server: %s", s.body)
}

func TestTransport(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		m, err := New("m", WithBaseURL(url))
		require.NoError(t, err)
		_, err = m.Generate(context.Background(), providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Hi"}}})
		assertKind(t, err, providers.ErrUnavailable, 0)
	})
	t.Run("connection dropped mid-stream", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}`+"\n\n")
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}))
		defer srv.Close()
		m, err := New("m", WithBaseURL(srv.URL))
		require.NoError(t, err)
		_, err = m.Stream(context.Background(), providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Hi"}}}, func(providers.Delta) error { return nil })
		assertKind(t, err, providers.ErrTruncated, 0)
	})
	t.Run("caller's deadline", func(t *testing.T) {
		block := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(block)
		m, err := New("m", WithBaseURL(srv.URL))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err = m.Generate(ctx, providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Hi"}}})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var pe *providers.Error
		assert.NotErrorAs(t, err, &pe, "the context's deadline is not classified")
	})
	t.Run("callback error stops the stream", func(t *testing.T) {
		m, _ := server(t, reply{header: map[string]string{"Content-Type": "text/event-stream"}, body: sse(`{"choices":[{"index":0,"delta":{"content":"a"}}]}`, `{"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}`)})
		stop := errors.New("stop")
		n := 0
		_, err := m.Stream(context.Background(), providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Hi"}}}, func(providers.Delta) error { n++; return stop })
		assert.ErrorIs(t, err, stop)
		assert.Equal(t, 1, n, "deltas, the first one stops the stream")
	})
}

func TestConfig(t *testing.T) {
	t.Run("environment", func(t *testing.T) {
		s := &seen{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.path, s.header = r.URL.Path, r.Header.Clone()
			s.mu.Unlock()
			io.WriteString(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`)
		}))
		defer srv.Close()
		t.Setenv("OPENAI_API_KEY", "sk-env")
		t.Setenv("OPENAI_BASE_URL", srv.URL+"/v1")
		m, err := New("m")
		require.NoError(t, err)
		_, err = m.Generate(context.Background(), providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Hi"}}})
		require.NoError(t, err)
		assert.Equal(t, "/v1/chat/completions", s.path)
		assert.Equal(t, "Bearer sk-env", s.header.Get("Authorization"))
	})
	t.Run("no key, no base URL", func(t *testing.T) {
		t.Setenv("OPENAI_API_KEY", "")
		t.Setenv("OPENAI_BASE_URL", "")
		_, err := New("m")
		assert.Error(t, err, "New without a key or a base URL succeeded")
		_, err = New("", WithAPIKey("k"))
		assert.Error(t, err, "New without a model succeeded")
	})
	t.Run("azure", func(t *testing.T) {
		m, s := server(t, reply{body: `{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`}, WithAzure("2024-10-21"))
		_, err := m.Generate(context.Background(), providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Hi"}}})
		require.NoError(t, err)
		assert.Equal(t, "/v1/openai/deployments/gpt-test/chat/completions", s.path)
		assert.Equal(t, "api-version=2024-10-21", s.query)
		assert.Equal(t, "sk-test", s.header.Get("Api-Key"))
	})
	t.Run("legacy max_tokens", func(t *testing.T) {
		m, s := server(t, reply{body: `{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`}, WithLegacyMaxTokens())
		_, err := m.Generate(context.Background(), providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Hi"}}, Settings: providers.Settings{MaxTokens: 9}})
		require.NoError(t, err)
		assert.Equal(t, "9", s.field(t, "max_tokens"), "request max_tokens")
		assert.Empty(t, s.field(t, "max_completion_tokens"), "request max_completion_tokens")
	})
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		header map[string]string
		want   time.Duration
	}{
		{nil, 0},
		{map[string]string{"Retry-After": "5"}, 5 * time.Second},
		{map[string]string{"Retry-After": "0.25"}, 250 * time.Millisecond},
		{map[string]string{"Retry-After": "-3"}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{map[string]string{"Retry-After-Ms": "120", "Retry-After": "9"}, 120 * time.Millisecond},
		{map[string]string{"Retry-After-Ms": "x", "Retry-After": "9"}, 9 * time.Second},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		assert.Equal(t, tt.want, retryAfter(h, now), "retryAfter(%v)", tt.header)
	}
}
