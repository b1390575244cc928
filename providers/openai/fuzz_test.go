package openai

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/providers"
)

// roundTrip serves one body to every request, in memory: the fuzzer runs
// the whole provider, go-openai's SSE reader included, without a network.
type roundTrip string

func (body roundTrip) RoundTrip(req *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, req.Body)
	req.Body.Close()
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"text/event-stream"}},
		Body:    io.NopCloser(strings.NewReader(string(body))),
		Request: req,
	}, nil
}

// FuzzStream feeds arbitrary bodies to Stream. It must never panic, and a
// stream it accepts must be whole: finished, journalable, and equal to the
// concatenation of the deltas it delivered.
func FuzzStream(f *testing.F) {
	for _, seed := range []string{
		sse(`{"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}`, `{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`),
		sse(`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{\"a"}}]}}]}`,
			`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":2,"id":"d","function":{"name":"g","arguments":"["}},{"index":0,"function":{"arguments":"\":1}"}}]}}]}`,
			`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":2,"function":{"arguments":"]"}}]},"finish_reason":"tool_calls"}]}`),
		sse(`{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"x","function":{"name":"f","arguments":"{}"}},{"function":{"arguments":"x"}}]},"finish_reason":"tool_calls"}]}`),
		sse(`{"choices":[{"index":1,"delta":{"content":"other choice"}},{"index":0,"delta":{"content":"\u00ff\ud800"},"finish_reason":"length"}]}`),
		sse(`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":-5,"function":{"arguments":"a"}},{"index":9223372036854775807}]},"finish_reason":"x"}]}`),
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\n",
		"data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
		": ping\n\ndata:[DONE]\n\n",
		"data: {\"choi",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		m, err := New("m", WithBaseURL("http://fuzz.invalid/v1"), WithHTTPClient(&http.Client{Transport: roundTrip(body)}))
		require.NoError(t, err)
		var text strings.Builder
		args := map[int]string{}
		resp, err := m.Stream(context.Background(), providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "x"}}},
			func(d providers.Delta) error {
				text.WriteString(d.Text)
				if d.ToolCall != nil {
					args[d.ToolCall.Index] += d.ToolCall.Arguments
				}
				return nil
			})
		if err != nil {
			var pe *providers.Error
			require.ErrorAs(t, err, &pe, "unclassified error")
			return
		}
		require.NotEmpty(t, resp.FinishReason, "accepted an unfinished stream: %+v", resp)
		require.Contains(t, body, "[DONE]", "accepted an unfinished stream: %+v", resp)
		require.Equal(t, resp.Message.Content, text.String(), "the deltas' text")
		require.Len(t, resp.Message.ToolCalls, len(args), "calls in the response, as many as in the deltas")
		var got []string
		for _, c := range resp.Message.ToolCalls {
			got = append(got, c.Arguments)
		}
		var want []string
		for _, i := range slices.Sorted(maps.Keys(args)) {
			want = append(want, args[i])
		}
		require.Equal(t, want, got, "the response's arguments, as the deltas say")
		_, err = json.Marshal(resp)
		require.NoError(t, err, "response does not journal")
	})
}
