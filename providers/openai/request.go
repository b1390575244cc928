package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/cairn-dev/cairn/providers"
)

const provider = "openai"

// emptyParameters is the schema sent for a tool without Parameters: OpenAI
// wants an object schema.
const emptyParameters = `{"type":"object","properties":{}}`

// toRequest translates req into a Chat Completions request for model,
// unless req names its own. It rejects what the server would reject anyway
// when that can be known here.
func toRequest(req providers.Request, model string, legacyMaxTokens bool) (goopenai.ChatCompletionRequest, error) {
	if req.Model != "" {
		model = req.Model
	}
	creq := goopenai.ChatCompletionRequest{Model: model}
	if req.System != "" {
		creq.Messages = append(creq.Messages, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleSystem, Content: req.System})
	}
	for i, m := range req.Messages {
		cm, err := toMessage(m)
		if err != nil {
			return creq, fmt.Errorf("message %d: %w", i, err)
		}
		creq.Messages = append(creq.Messages, cm)
	}
	if len(creq.Messages) == 0 {
		return creq, errors.New("no messages")
	}

	names := make(map[string]bool, len(req.Tools))
	for _, t := range req.Tools {
		params := t.Parameters
		if len(params) == 0 {
			params = json.RawMessage(emptyParameters)
		} else if !json.Valid(params) {
			return creq, fmt.Errorf("tool %q: parameters are not valid JSON", t.Name)
		}
		names[t.Name] = true
		creq.Tools = append(creq.Tools, goopenai.Tool{
			Type:     goopenai.ToolTypeFunction,
			Function: &goopenai.FunctionDefinition{Name: t.Name, Description: t.Description, Parameters: params},
		})
	}
	if len(req.Tools) > 0 {
		switch tc := req.ToolChoice; tc.Mode {
		case "":
		case providers.ToolChoiceAuto, providers.ToolChoiceNone, providers.ToolChoiceRequired:
			creq.ToolChoice = string(tc.Mode)
		case providers.ToolChoiceNamed:
			if !names[tc.Name] {
				return creq, fmt.Errorf("tool choice names %q, which is not among the tools", tc.Name)
			}
			creq.ToolChoice = goopenai.ToolChoice{Type: goopenai.ToolTypeFunction, Function: goopenai.ToolFunction{Name: tc.Name}}
		default:
			return creq, fmt.Errorf("unknown tool choice mode %q", tc.Mode)
		}
		if p := req.Settings.ParallelToolCalls; p != nil {
			creq.ParallelToolCalls = *p
		}
	}

	s := req.Settings
	creq.Temperature = float32OrTiny(s.Temperature)
	creq.TopP = float32OrTiny(s.TopP)
	if legacyMaxTokens {
		creq.MaxTokens = s.MaxTokens
	} else {
		creq.MaxCompletionTokens = s.MaxTokens
	}
	creq.Stop = s.Stop
	creq.Seed = s.Seed
	creq.ReasoningEffort = s.ReasoningEffort

	if o := req.Output; o != nil {
		if !json.Valid(o.Schema) {
			return creq, errors.New("output schema is not valid JSON")
		}
		name := o.Name
		if name == "" {
			name = "output"
		}
		creq.ResponseFormat = &goopenai.ChatCompletionResponseFormat{
			Type: goopenai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &goopenai.ChatCompletionResponseFormatJSONSchema{
				Name: name, Description: o.Description, Schema: o.Schema, Strict: o.Strict,
			},
		}
	}
	return creq, nil
}

// float32OrTiny converts an optional setting. go-openai omits a zero, so an
// explicit 0 is sent as the smallest positive float32, which servers treat
// as 0.
func float32OrTiny(p *float64) float32 {
	switch {
	case p == nil:
		return 0
	case *p == 0:
		return math.SmallestNonzeroFloat32
	default:
		return float32(*p)
	}
}

func toMessage(m providers.Message) (goopenai.ChatCompletionMessage, error) {
	cm := goopenai.ChatCompletionMessage{Content: m.Content}
	switch m.Role {
	case providers.RoleUser:
		cm.Role = goopenai.ChatMessageRoleUser
	case providers.RoleAssistant:
		cm.Role = goopenai.ChatMessageRoleAssistant
		for _, c := range m.ToolCalls {
			cm.ToolCalls = append(cm.ToolCalls, goopenai.ToolCall{
				ID:       c.ID,
				Type:     goopenai.ToolTypeFunction,
				Function: goopenai.FunctionCall{Name: c.Name, Arguments: c.Arguments},
			})
		}
	case providers.RoleTool:
		if m.ToolCallID == "" {
			return cm, errors.New("tool message without a tool call id")
		}
		cm.Role = goopenai.ChatMessageRoleTool
		cm.ToolCallID = m.ToolCallID
	default:
		return cm, fmt.Errorf("unknown role %q", m.Role)
	}
	return cm, nil
}

// fromResponse translates a complete (not streamed) chat completion.
func fromResponse(resp goopenai.ChatCompletionResponse) (providers.Response, error) {
	if len(resp.Choices) == 0 {
		return providers.Response{}, providers.Classify(&providers.Error{
			Kind: providers.ErrTruncated, Provider: provider, Message: "response without a choice",
		})
	}
	ch := resp.Choices[0]
	out := providers.Response{
		ID:           resp.ID,
		Model:        resp.Model,
		Message:      providers.Message{Role: providers.RoleAssistant, Content: ch.Message.Content},
		FinishReason: providers.FinishReason(ch.FinishReason),
		Refusal:      ch.Message.Refusal,
		Usage:        fromUsage(&resp.Usage),
	}
	for i, c := range ch.Message.ToolCalls {
		out.Message.ToolCalls = append(out.Message.ToolCalls, providers.ToolCall{
			ID: callID(c.ID, i), Name: c.Function.Name, Arguments: c.Function.Arguments,
		})
	}
	return out, nil
}

// callID is the id of the call at index i: the server's, or, for servers
// that send none, one derived from the index, so that the tool result can
// still answer it.
func callID(id string, i int) string {
	if id != "" {
		return id
	}
	return fmt.Sprintf("call_%d", i)
}

func fromUsage(u *goopenai.Usage) providers.Usage {
	out := providers.Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	if d := u.PromptTokensDetails; d != nil {
		out.CachedInputTokens = d.CachedTokens
	}
	if d := u.CompletionTokensDetails; d != nil {
		out.ReasoningTokens = d.ReasoningTokens
	}
	return out
}
