package openai

import (
	"context"
	"fmt"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/cairn-dev/cairn/providers"
)

var (
	_ providers.Embedder  = (*Embedder)(nil)
	_ providers.Describer = (*Embedder)(nil)
)

// DefaultBatchSize is how many texts an Embedder sends in one request,
// unless WithBatchSize says otherwise. OpenAI takes up to 2048.
const DefaultBatchSize = 256

// Embedder is an embedding model behind an OpenAI-compatible endpoint
// (POST /embeddings): OpenAI's text-embedding-3-small, say, or one served
// by Azure OpenAI, Ollama or vLLM. It is safe for concurrent use.
type Embedder struct {
	client     *goopenai.Client
	model      string
	provider   string
	batchSize  int
	dimensions int
}

// WithBatchSize sets how many texts an Embedder sends in one request
// (DefaultBatchSize if n < 1). NewEmbedder's alone.
func WithBatchSize(n int) Option { return func(c *config) { c.batchSize = n } }

// WithDimensions asks for vectors of n numbers, from models that can
// shorten theirs (OpenAI's text-embedding-3 and later). NewEmbedder's
// alone.
func WithDimensions(n int) Option { return func(c *config) { c.dimensions = n } }

// NewEmbedder returns the embedding model named model (a deployment name
// on Azure). It takes New's options, and its environment: it needs an API
// key unless a base URL other than OpenAI's is set.
func NewEmbedder(model string, opts ...Option) (*Embedder, error) {
	c, err := configure(model, opts)
	if err != nil {
		return nil, err
	}
	client, provider := c.client()
	batch := c.batchSize
	if batch < 1 {
		batch = DefaultBatchSize
	}
	return &Embedder{client: client, model: model, provider: provider, batchSize: batch, dimensions: c.dimensions}, nil
}

// Describe implements providers.Describer, as Model's does.
func (e *Embedder) Describe() providers.Info {
	return providers.Info{Provider: e.provider, Model: e.model}
}

// Embed implements providers.Embedder: texts go in requests of at most
// the batch size, one after another. Errors are classified as Model's
// are: a rate limit (with the Retry-After the server sent) or a server
// error is retried, a bad request or a bad key is not. An answer with
// another count of vectors than texts, a vector missing or empty, or
// vectors of different lengths, is an error of kind
// providers.ErrTruncated: never fewer vectors than texts.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += e.batchSize {
		batch := texts[start:min(len(texts), start+e.batchSize)]
		vs, err := e.embed(ctx, batch)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && len(vs[0]) != len(out[0]) {
			return nil, truncated(fmt.Sprintf("vectors of %d numbers, then of %d", len(out[0]), len(vs[0])))
		}
		out = append(out, vs...)
	}
	return out, nil
}

// embed sends one request and checks its answer.
func (e *Embedder) embed(ctx context.Context, texts []string) ([][]float32, error) {
	var call callInfo
	resp, err := e.client.CreateEmbeddings(withCallInfo(ctx, &call), goopenai.EmbeddingRequest{
		Input: texts, Model: goopenai.EmbeddingModel(e.model), Dimensions: e.dimensions,
	})
	if err != nil {
		return nil, classify(ctx, err, &call)
	}
	if len(resp.Data) != len(texts) {
		return nil, truncated(fmt.Sprintf("%d vectors for %d texts", len(resp.Data), len(texts)))
	}
	vs := make([][]float32, len(texts))
	for _, d := range resp.Data {
		switch {
		case d.Index < 0 || d.Index >= len(texts):
			return nil, truncated(fmt.Sprintf("a vector of index %d for %d texts", d.Index, len(texts)))
		case vs[d.Index] != nil:
			return nil, truncated(fmt.Sprintf("two vectors of index %d", d.Index))
		case len(d.Embedding) == 0:
			return nil, truncated(fmt.Sprintf("an empty vector of index %d", d.Index))
		case len(d.Embedding) != len(resp.Data[0].Embedding):
			return nil, truncated(fmt.Sprintf("vectors of %d and %d numbers", len(resp.Data[0].Embedding), len(d.Embedding)))
		}
		vs[d.Index] = d.Embedding
	}
	return vs, nil
}

// truncated is the error of an answer that lacks what was asked for.
func truncated(msg string) error {
	return providers.Classify(&providers.Error{Kind: providers.ErrTruncated, Provider: provider, Message: "embeddings: " + msg})
}
