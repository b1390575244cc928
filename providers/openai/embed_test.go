package openai

import (
	"context"
	"encoding/json"
	"fmt"
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

// embedRequest is what the test server read of an embeddings request.
type embedRequest struct {
	path, query string
	header      http.Header
	body        map[string]json.RawMessage
	input       []string
}

// embedServer starts an Embeddings server on loopback that answers each
// request with answer, and an Embedder that talks to it.
func embedServer(t *testing.T, answer func(r embedRequest, w http.ResponseWriter), opts ...Option) (*Embedder, func() []embedRequest) {
	t.Helper()
	var mu sync.Mutex
	var reqs []embedRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		data, _ := io.ReadAll(req.Body)
		r := embedRequest{path: req.URL.Path, query: req.URL.RawQuery, header: req.Header.Clone()}
		if err := json.Unmarshal(data, &r.body); err == nil {
			_ = json.Unmarshal(r.body["input"], &r.input)
		}
		mu.Lock()
		reqs = append(reqs, r)
		mu.Unlock()
		answer(r, w)
	}))
	t.Cleanup(srv.Close)
	e, err := NewEmbedder("text-embedding-test", append([]Option{WithAPIKey("sk-test"), WithBaseURL(srv.URL + "/v1")}, opts...)...)
	require.NoError(t, err)
	return e, func() []embedRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]embedRequest(nil), reqs...)
	}
}

// vectorOf is the test server's embedding of a text: its length, then its
// first byte.
func vectorOf(text string) []float32 {
	first := float32(0)
	if text != "" {
		first = float32(text[0])
	}
	return []float32{float32(len(text)), first, 0.5}
}

// embeddings renders an answer in the wire format, vectors in the order
// given (each with its index).
func embeddings(index []int, vecs [][]float32) string {
	var data []string
	for i, v := range vecs {
		b, _ := json.Marshal(v)
		data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":%s}`, index[i], b))
	}
	return `{"object":"list","data":[` + strings.Join(data, ",") + `],"model":"text-embedding-test","usage":{"prompt_tokens":5,"total_tokens":5}}`
}

// echo answers with the vectorOf each input, in order.
func echo(r embedRequest, w http.ResponseWriter) {
	var index []int
	var vecs [][]float32
	for i, text := range r.input {
		index = append(index, i)
		vecs = append(vecs, vectorOf(text))
	}
	io.WriteString(w, embeddings(index, vecs))
}

func TestEmbed(t *testing.T) {
	e, reqs := embedServer(t, echo, WithBatchSize(2))
	texts := []string{"alpha", "be", "gamma ray", "d", "epsilon"}
	vs, err := e.Embed(t.Context(), texts)
	require.NoError(t, err)
	require.Len(t, vs, len(texts))
	for i, text := range texts {
		assert.Equal(t, vectorOf(text), vs[i], "vector of %q", text)
	}
	got := reqs()
	require.Len(t, got, 3, "requests for 5 texts in batches of 2")
	for i, r := range got {
		assert.Equal(t, "/v1/embeddings", r.path)
		assert.Equal(t, "Bearer sk-test", r.header.Get("Authorization"))
		assert.Equal(t, `"text-embedding-test"`, string(r.body["model"]))
		assert.Equal(t, texts[2*i:min(len(texts), 2*i+2)], r.input, "request %d's input", i)
		assert.NotContains(t, r.body, "dimensions", "dimensions sent without WithDimensions")
	}
	assert.Equal(t, providers.Info{Provider: "openai", Model: "text-embedding-test"}, e.Describe())

	none, err := e.Embed(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, none)
	assert.Len(t, reqs(), 3, "a request for no texts")
}

func TestEmbedOptions(t *testing.T) {
	t.Run("dimensions and default batch", func(t *testing.T) {
		e, reqs := embedServer(t, echo, WithDimensions(64))
		texts := make([]string, DefaultBatchSize+1)
		for i := range texts {
			texts[i] = fmt.Sprint(i)
		}
		vs, err := e.Embed(t.Context(), texts)
		require.NoError(t, err)
		assert.Len(t, vs, len(texts))
		got := reqs()
		require.Len(t, got, 2)
		assert.Len(t, got[0].input, DefaultBatchSize)
		assert.Equal(t, "64", string(got[0].body["dimensions"]))
	})
	t.Run("azure", func(t *testing.T) {
		e, reqs := embedServer(t, echo, WithAzure("2024-10-21"))
		_, err := e.Embed(t.Context(), []string{"x"})
		require.NoError(t, err)
		got := reqs()
		require.Len(t, got, 1)
		assert.Equal(t, "/v1/openai/deployments/text-embedding-test/embeddings", got[0].path)
		assert.Equal(t, "api-version=2024-10-21", got[0].query)
		assert.Equal(t, "sk-test", got[0].header.Get("Api-Key"))
		assert.Equal(t, "azure.ai.openai", e.Describe().Provider)
	})
	t.Run("configuration errors", func(t *testing.T) {
		t.Setenv("OPENAI_API_KEY", "")
		t.Setenv("OPENAI_BASE_URL", "")
		_, err := NewEmbedder("m")
		assert.Error(t, err, "NewEmbedder without a key or a base URL")
		_, err = NewEmbedder("", WithAPIKey("k"))
		assert.Error(t, err, "NewEmbedder without a model")
	})
}

// TestEmbedOrder checks that vectors are placed by their index, in
// whatever order the server lists them.
func TestEmbedOrder(t *testing.T) {
	e, _ := embedServer(t, func(r embedRequest, w http.ResponseWriter) {
		io.WriteString(w, embeddings([]int{2, 0, 1}, [][]float32{vectorOf(r.input[2]), vectorOf(r.input[0]), vectorOf(r.input[1])}))
	})
	vs, err := e.Embed(t.Context(), []string{"a", "bb", "ccc"})
	require.NoError(t, err)
	assert.Equal(t, [][]float32{vectorOf("a"), vectorOf("bb"), vectorOf("ccc")}, vs)
}

func TestEmbedErrors(t *testing.T) {
	apiErr := func(msg, typ, code string) string {
		return `{"error":{"message":"` + msg + `","type":"` + typ + `","param":null,"code":"` + code + `"}}`
	}
	status := func(code int, header map[string]string, body string) func(embedRequest, http.ResponseWriter) {
		return func(_ embedRequest, w http.ResponseWriter) {
			for k, v := range header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(code)
			io.WriteString(w, body)
		}
	}
	answer := func(body string) func(embedRequest, http.ResponseWriter) { return status(200, nil, body) }
	tests := []struct {
		name      string
		answer    func(embedRequest, http.ResponseWriter)
		kind      error
		retryable bool
		after     time.Duration
		contains  string
	}{
		{"rate limited", status(429, map[string]string{"Retry-After": "3"}, apiErr("Rate limit reached", "requests", "rate_limit_exceeded")), providers.ErrRateLimited, true, 3 * time.Second, "rate_limit_exceeded"},
		{"server error", status(500, nil, apiErr("The server had an error", "server_error", "")), providers.ErrUnavailable, true, 0, "500"},
		{"overloaded, with a wait", status(503, map[string]string{"Retry-After-Ms": "250"}, apiErr("Overloaded", "server_error", "")), providers.ErrUnavailable, true, 250 * time.Millisecond, "503"},
		{"bad request", status(400, nil, apiErr("'$.input' is invalid", "invalid_request_error", "")), providers.ErrInvalidRequest, false, 0, "input"},
		{"bad key", status(401, nil, apiErr("Incorrect API key provided", "invalid_request_error", "invalid_api_key")), providers.ErrAuth, false, 0, "invalid_api_key"},
		{"unknown model", status(404, nil, apiErr("The model does not exist", "invalid_request_error", "model_not_found")), providers.ErrInvalidRequest, false, 0, "model_not_found"},
		{"quota", status(429, nil, apiErr("You exceeded your current quota", "insufficient_quota", "insufficient_quota")), providers.ErrQuotaExceeded, false, 0, "quota"},
		{"proxy page", status(502, map[string]string{"Content-Type": "text/html"}, "<html>Bad Gateway</html>"), providers.ErrUnavailable, true, 0, "Bad Gateway"},
		{"fewer vectors", answer(embeddings([]int{0}, [][]float32{{1, 2}})), providers.ErrTruncated, true, 0, "1 vectors for 2 texts"},
		{"more vectors", answer(embeddings([]int{0, 1, 2}, [][]float32{{1}, {2}, {3}})), providers.ErrTruncated, true, 0, "3 vectors for 2 texts"},
		{"no data", answer(`{"object":"list","data":[]}`), providers.ErrTruncated, true, 0, "0 vectors for 2 texts"},
		{"index twice", answer(embeddings([]int{1, 1}, [][]float32{{1}, {2}})), providers.ErrTruncated, true, 0, "two vectors of index 1"},
		{"index out of range", answer(embeddings([]int{0, 2}, [][]float32{{1}, {2}})), providers.ErrTruncated, true, 0, "index 2"},
		{"empty vector", answer(embeddings([]int{0, 1}, [][]float32{{1}, {}})), providers.ErrTruncated, true, 0, "empty vector"},
		{"lengths differ", answer(embeddings([]int{0, 1}, [][]float32{{1, 2}, {3}})), providers.ErrTruncated, true, 0, "2 and 1 numbers"},
		{"not JSON", answer(`{"object":"list","da`), providers.ErrTruncated, true, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := embedServer(t, tt.answer)
			vs, err := e.Embed(t.Context(), []string{"one", "two"})
			assert.Nil(t, vs)
			assertKind(t, err, tt.kind, tt.after)
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.retryable, pe.Retryable(), "Retryable")
			assert.Contains(t, err.Error(), tt.contains)
		})
	}
}

// TestEmbedBatchesDiffer checks that batches whose vectors differ in
// length are an error, not a mix.
func TestEmbedBatchesDiffer(t *testing.T) {
	var n int
	var mu sync.Mutex
	e, _ := embedServer(t, func(r embedRequest, w http.ResponseWriter) {
		mu.Lock()
		n++
		dim := n
		mu.Unlock()
		io.WriteString(w, embeddings([]int{0}, [][]float32{make([]float32, dim)}))
	}, WithBatchSize(1))
	_, err := e.Embed(t.Context(), []string{"a", "b"})
	assertKind(t, err, providers.ErrTruncated, 0)
	assert.Contains(t, err.Error(), "vectors of 1 numbers, then of 2")
}

func TestEmbedTransport(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		e, err := NewEmbedder("m", WithBaseURL(url))
		require.NoError(t, err)
		_, err = e.Embed(t.Context(), []string{"x"})
		assertKind(t, err, providers.ErrUnavailable, 0)
	})
	t.Run("caller's deadline", func(t *testing.T) {
		block := make(chan struct{})
		e, _ := embedServer(t, func(_ embedRequest, w http.ResponseWriter) { <-block })
		defer close(block)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := e.Embed(ctx, []string{"x"})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var pe *providers.Error
		assert.NotErrorAs(t, err, &pe, "the context's deadline is not classified")
	})
}
