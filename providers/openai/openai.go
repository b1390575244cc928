// Package openai is a providers.Model for the OpenAI Chat Completions API
// and every server that speaks it: OpenAI, Azure OpenAI, Ollama, vLLM, the
// llama.cpp server; and a providers.Embedder for their Embeddings API
// (NewEmbedder). It is built on github.com/sashabaranov/go-openai.
//
// It supports tools and parallel tool calls, tool choice, structured output
// (response_format with a JSON Schema) and streaming, where tool-call deltas
// are assembled by index and token usage is read from the last chunk.
//
// Configuration comes from options, then from the environment:
// OPENAI_API_KEY and OPENAI_BASE_URL (for example
// http://localhost:11434/v1 for Ollama).
//
// Errors carry a kind from package providers and are marked for the retry
// policy with providers.Classify: rate limits (with the Retry-After the
// server sent), server errors, timeouts and truncated streams are retried;
// bad requests, authentication, quota and content-policy errors are not.
package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/cairn-dev/cairn/providers"
)

var (
	_ providers.Model          = (*Model)(nil)
	_ providers.StreamingModel = (*Model)(nil)
	_ providers.Describer      = (*Model)(nil)
)

// Model is a chat model behind an OpenAI-compatible endpoint. It is safe for
// concurrent use.
type Model struct {
	client          *goopenai.Client
	model           string
	provider        string
	legacyMaxTokens bool
}

type config struct {
	apiKey, baseURL, org string
	azureVersion         string
	httpClient           *http.Client
	legacyMaxTokens      bool
	batchSize            int // NewEmbedder's
	dimensions           int // NewEmbedder's
}

// An Option configures New or NewEmbedder.
type Option func(*config)

// WithAPIKey sets the API key, instead of OPENAI_API_KEY.
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// WithBaseURL sets the endpoint, instead of OPENAI_BASE_URL or OpenAI's,
// for example "http://localhost:8000/v1" for vLLM.
func WithBaseURL(url string) Option { return func(c *config) { c.baseURL = url } }

// WithOrganization sets the OpenAI organization header.
func WithOrganization(org string) Option { return func(c *config) { c.org = org } }

// WithAzure talks to Azure OpenAI with the given API version (for example
// "2024-10-21"): the base URL is the resource's endpoint, the key goes in
// the api-key header and the model name is the deployment name.
func WithAzure(apiVersion string) Option { return func(c *config) { c.azureVersion = apiVersion } }

// WithHTTPClient sets the HTTP client. The default has no timeout of its
// own: the context of each call bounds it.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithLegacyMaxTokens sends Settings.MaxTokens as max_tokens instead of
// max_completion_tokens, for servers that know only the older field.
func WithLegacyMaxTokens() Option { return func(c *config) { c.legacyMaxTokens = true } }

// New returns the model named model (a deployment name on Azure). It needs
// an API key unless a base URL other than OpenAI's is set: local servers
// usually take none.
func New(model string, opts ...Option) (*Model, error) {
	c, err := configure(model, opts)
	if err != nil {
		return nil, err
	}
	client, provider := c.client()
	return &Model{client: client, model: model, provider: provider, legacyMaxTokens: c.legacyMaxTokens}, nil
}

// configure applies the environment, then opts, and checks the result.
func configure(model string, opts []Option) (config, error) {
	c := config{apiKey: os.Getenv("OPENAI_API_KEY"), baseURL: os.Getenv("OPENAI_BASE_URL")}
	for _, o := range opts {
		o(&c)
	}
	if model == "" {
		return c, errors.New("openai: no model name")
	}
	if c.apiKey == "" && c.baseURL == "" {
		return c, errors.New("openai: no API key: set OPENAI_API_KEY or use WithAPIKey")
	}
	return c, nil
}

// client returns the go-openai client of c, and the provider's name for
// telemetry.
func (c config) client() (*goopenai.Client, string) {
	var cc goopenai.ClientConfig
	if c.azureVersion != "" {
		cc = goopenai.DefaultAzureConfig(c.apiKey, c.baseURL)
		cc.APIVersion = c.azureVersion
	} else {
		cc = goopenai.DefaultConfig(c.apiKey)
		if c.baseURL != "" {
			cc.BaseURL = c.baseURL
		}
	}
	cc.OrgID = c.org
	hc := c.httpClient
	if hc == nil {
		hc = &http.Client{}
	}
	cc.HTTPClient = recorder{hc}
	provider := "openai"
	if c.azureVersion != "" {
		provider = "azure.ai.openai"
	}
	return goopenai.NewClientWithConfig(cc), provider
}

// Describe implements providers.Describer: provider "openai" (also for
// other servers that speak its API), or "azure.ai.openai" with WithAzure.
func (m *Model) Describe() providers.Info {
	return providers.Info{Provider: m.provider, Model: m.model}
}

// Generate asks for a chat completion.
func (m *Model) Generate(ctx context.Context, req providers.Request) (providers.Response, error) {
	creq, err := m.request(req)
	if err != nil {
		return providers.Response{}, err
	}
	var call callInfo
	resp, err := m.client.CreateChatCompletion(withCallInfo(ctx, &call), creq)
	if err != nil {
		return providers.Response{}, classify(ctx, err, &call)
	}
	return fromResponse(resp)
}

// Stream asks for a chat completion streamed as server-sent events, calling
// fn with each delta. It asks for usage in the last chunk
// (stream_options.include_usage). The stream must end with a finish reason
// and the [DONE] marker; one that ends otherwise is an error of kind
// providers.ErrTruncated.
func (m *Model) Stream(ctx context.Context, req providers.Request, fn func(providers.Delta) error) (providers.Response, error) {
	creq, err := m.request(req)
	if err != nil {
		return providers.Response{}, err
	}
	creq.Stream = true
	creq.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
	call := callInfo{streaming: true}
	stream, err := m.client.CreateChatCompletionStream(withCallInfo(ctx, &call), creq)
	if err != nil {
		return providers.Response{}, classify(ctx, err, &call)
	}
	defer stream.Close()
	var a assembler
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return providers.Response{}, classifyStream(ctx, err, &call)
		}
		if err := a.add(chunk, fn); err != nil {
			return providers.Response{}, fmt.Errorf("openai: stream callback: %w", err)
		}
	}
	return a.response(call.done)
}

func (m *Model) request(req providers.Request) (goopenai.ChatCompletionRequest, error) {
	creq, err := toRequest(req, m.model, m.legacyMaxTokens)
	if err != nil {
		return creq, providers.Classify(&providers.Error{Kind: providers.ErrInvalidRequest, Provider: provider, Err: err})
	}
	return creq, nil
}
