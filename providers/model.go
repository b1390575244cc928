// Package providers defines how cairn talks to a language model: a Model
// turns a Request into a Response, and a StreamingModel also delivers the
// answer in pieces as it is generated.
//
// Requests and responses are plain data that marshal to JSON without loss,
// because the agent journals every response as the output of a durable
// activity and replays it after a crash. A model knows nothing of
// durability: it is ordinary Go with a context.Context. Implementations live
// in subpackages named after what they wrap: openai for the Chat Completions
// API and every server that speaks it, scripted for tests and examples.
//
// Errors that the retry policy must tell apart carry a kind from this
// package (ErrRateLimited, ErrInvalidRequest, ...); see Error and Classify.
package providers

import (
	"context"
	"encoding/json"
)

// Model generates the next assistant turn of a conversation.
//
// Generate must be safe for concurrent use, must not modify req or keep
// references into it after it returns, and returns either a complete
// Response or an error: never a response cut short without saying so (a
// response that stopped at a token limit says so in its FinishReason).
// Errors should carry a kind with Classify so that retries do the right
// thing.
type Model interface {
	Generate(ctx context.Context, req Request) (Response, error)
}

// Describer is a Model that can say what it is, for traces and metrics.
// Check for it with a type assertion.
type Describer interface {
	Describe() Info
}

// Info names a model for telemetry.
type Info struct {
	// Provider is an OpenTelemetry gen_ai.provider.name: "openai",
	// "azure.ai.openai", or the name of the service or library.
	Provider string
	// Model is the model asked for, as the provider names it.
	Model string
}

// StreamingModel is a Model that can also deliver its answer as it is
// generated. Check for it with a type assertion, or call Stream, which falls
// back to Generate.
//
// Stream calls fn with each piece of text and of tool-call arguments, in
// order, from the calling goroutine, and returns the same Response that
// Generate would have: the concatenation of the deltas equals the final text
// and arguments. If fn returns an error, Stream stops and returns it
// (wrapped). A stream that ends early is an error of kind ErrTruncated.
type StreamingModel interface {
	Model
	Stream(ctx context.Context, req Request, fn func(Delta) error) (Response, error)
}

// Role says who wrote a message.
type Role string

// The roles of the messages of a conversation.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool" // the result of a tool call, in reply to ToolCallID
)

// Message is one message of a conversation.
type Message struct {
	Role Role `json:"role"`
	// Content is the text of the message; for a tool message, the tool's
	// result as the model will read it (usually JSON).
	Content string `json:"content,omitempty"`
	// ToolCalls are the tools an assistant message asks to call.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID is, for a tool message, the ID of the call it answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
}

// ToolCall is the model's request to call a tool.
type ToolCall struct {
	// ID names the call; the tool message that answers it carries it back.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Arguments is the JSON text the model wrote. It is a string, not a
	// json.RawMessage, because models write malformed JSON too, and the
	// response must still journal: validate it before use.
	Arguments string `json:"arguments"`
}

// ToolDefinition describes a tool the model may call.
type ToolDefinition struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Parameters is the JSON Schema of the arguments, an object schema.
	// Nil means the tool takes no arguments.
	Parameters json.RawMessage `json:"parameters,omitempty"`
}

// ToolChoiceMode says whether and which tools the model must call.
type ToolChoiceMode string

// The tool choice modes. The zero ToolChoice leaves it to the provider,
// which is ToolChoiceAuto wherever there are tools.
const (
	ToolChoiceAuto     ToolChoiceMode = "auto"     // the model decides
	ToolChoiceNone     ToolChoiceMode = "none"     // no tool calls
	ToolChoiceRequired ToolChoiceMode = "required" // at least one tool call
	ToolChoiceNamed    ToolChoiceMode = "named"    // a call of the tool named in ToolChoice.Name
)

// ToolChoice constrains the model's use of tools.
type ToolChoice struct {
	Mode ToolChoiceMode `json:"mode,omitempty"`
	Name string         `json:"name,omitempty"` // the tool, for ToolChoiceNamed
}

// OutputSchema asks for a final answer that is JSON valid against Schema
// (structured output).
type OutputSchema struct {
	// Name names the schema for the provider; empty means "output".
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema"`
	// Strict asks the provider to guarantee conformance, where it can
	// (OpenAI requires every property to be required and
	// additionalProperties to be false).
	Strict bool `json:"strict,omitempty"`
}

// Settings tune generation. Zero values, and nil pointers, leave the
// provider's default.
type Settings struct {
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	// MaxTokens caps the tokens generated, reasoning included.
	MaxTokens int      `json:"max_tokens,omitempty"`
	Stop      []string `json:"stop,omitempty"`
	Seed      *int     `json:"seed,omitempty"`
	// ParallelToolCalls, when set to false, asks for at most one tool call
	// per turn.
	ParallelToolCalls *bool `json:"parallel_tool_calls,omitempty"`
	// ReasoningEffort is passed through to reasoning models ("low",
	// "medium", "high", ...).
	ReasoningEffort string `json:"reasoning_effort,omitempty"`
}

// Request is what a model is asked.
type Request struct {
	// Model overrides the model the provider was configured with.
	Model string `json:"model,omitempty"`
	// System holds the system instructions.
	System   string           `json:"system,omitempty"`
	Messages []Message        `json:"messages"`
	Tools    []ToolDefinition `json:"tools,omitempty"`
	// ToolChoice applies only when there are Tools.
	ToolChoice ToolChoice    `json:"tool_choice,omitzero"`
	Settings   Settings      `json:"settings,omitzero"`
	Output     *OutputSchema `json:"output,omitempty"`
}

// FinishReason says why the model stopped.
type FinishReason string

// The usual finish reasons. Providers pass through others as they are.
const (
	FinishStop          FinishReason = "stop"           // a natural end or a stop sequence
	FinishLength        FinishReason = "length"         // the token limit: the answer is cut short
	FinishToolCalls     FinishReason = "tool_calls"     // the model wants its tool calls run
	FinishContentFilter FinishReason = "content_filter" // content was withheld by a filter
)

// Usage counts tokens.
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
	// CachedInputTokens is the part of InputTokens served from a cache.
	CachedInputTokens int `json:"cached_input_tokens,omitempty"`
	// ReasoningTokens is the part of OutputTokens spent on reasoning.
	ReasoningTokens int `json:"reasoning_tokens,omitempty"`
}

// Response is the model's answer: one assistant message.
type Response struct {
	// ID is the provider's id of the response, if it gives one.
	ID string `json:"id,omitempty"`
	// Model is the model that answered, as the provider names it.
	Model string `json:"model,omitempty"`
	// Message has role assistant, the text and the tool calls, ready to be
	// appended to the conversation.
	Message      Message      `json:"message"`
	FinishReason FinishReason `json:"finish_reason"`
	// Refusal is the model's explanation when it declined to produce the
	// structured output asked for.
	Refusal string `json:"refusal,omitempty"`
	Usage   Usage  `json:"usage"`
}

// Delta is a piece of a streamed answer: some text, or a piece of a tool
// call.
type Delta struct {
	Text     string         `json:"text,omitempty"`
	ToolCall *ToolCallDelta `json:"tool_call,omitempty"`
}

// ToolCallDelta is a piece of a tool call. The pieces of one call share its
// Index; the first carries the ID and the Name, and the Arguments of all of
// them, concatenated, are the call's arguments. Calls may interleave.
type ToolCallDelta struct {
	Index     int    `json:"index"`
	ID        string `json:"id,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
}
