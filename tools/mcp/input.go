package mcp

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// A server's requests while it serves a call (elicitation: a question to
// the person behind the client; sampling: a completion of the client's
// model) end the call's attempt with tools.NeedInput; the caller (an agent
// run) gets the input durably and calls the tool again with the responses
// (tools.InputFrom). Two protocols reach the same end:
//
//   - From protocol version 2026-07-28 (multi round-trip requests,
//     SEP-2322), the server puts its requests in the call's result
//     (input_required, with inputRequests and a requestState): they are
//     the call's, exactly. The re-call sends the responses
//     (inputResponses, under the server's ids) and the requestState back.
//   - Before it, the server sends a request of its own (elicitation/create,
//     sampling/createMessage) while the call runs. Such a request names no
//     call: the Client attributes it to the one call in flight on the
//     session, refuses it with an error, cancels the call (the server is
//     told), closes the session (so that a request the server sends late,
//     for this call, cannot be taken for the next call's: the next call
//     connects again), and ends the attempt with the request, named by a
//     hash of its content. The re-call is the same call again, with the
//     same idempotency key; when the server sends the same request, the
//     Client answers it at once from the recorded response, and a request
//     it has not seen ends that attempt in turn.

// mrtrState is the tools.NeedsInputError state of a call that a server
// answered with input_required: the state to echo, and the ids of the
// requests of that round.
type mrtrState struct {
	RequestState string   `json:"request_state,omitempty"`
	IDs          []string `json:"ids"`
}

// errDeferred refuses a server's request that ends the call's attempt.
var errDeferred = errors.New("cairn: this request is put to the agent's run; the call will be made again, with the same idempotency key, and the answer")

// inflight is a call in flight on a session, to which the server's
// requests (before protocol 2026-07-28) are attributed.
type inflight struct {
	in     tools.Input
	cancel context.CancelCauseFunc

	mu     sync.Mutex
	parked []tools.InputRequest
}

// park adds a request the call needs, and cuts the call short.
func (f *inflight) park(r tools.InputRequest) {
	f.mu.Lock()
	f.parked = append(f.parked, r)
	f.mu.Unlock()
	f.cancel(errDeferred)
}

func (f *inflight) needs() []tools.InputRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parked
}

// serverInput attributes a server's request (before protocol 2026-07-28)
// to the call in flight on its session and answers it from the call's
// recorded input, or parks it.
func (c *Client) serverInput(session *sdk.ClientSession, r tools.InputRequest) (tools.InputResponse, error) {
	f := c.inflightOn(session)
	if f == nil {
		return tools.InputResponse{}, fmt.Errorf("cairn: a %s request outside any tool call is not served", r.Kind)
	}
	if resp, ok := f.in.Response(r.ID); ok {
		return resp, nil
	}
	f.park(r)
	return tools.InputResponse{}, errDeferred
}

func (c *Client) onElicit(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
	r, err := elicitation("", req.Params)
	if err != nil {
		return nil, err
	}
	resp, err := c.serverInput(req.Session, r)
	if err != nil {
		return nil, err
	}
	return elicitResult(resp)
}

func (c *Client) onSample(_ context.Context, req *sdk.CreateMessageRequest) (*sdk.CreateMessageResult, error) {
	if req.Params == nil {
		return nil, fmt.Errorf("sampling: no parameters")
	}
	p := req.Params
	r, err := sampling("", p.SystemPrompt, p.MaxTokens, p.Temperature, p.StopSequences, v2Messages(p.Messages))
	if err != nil {
		return nil, err
	}
	resp, err := c.serverInput(req.Session, r)
	if err != nil {
		return nil, err
	}
	res := sampleResult(resp)
	var content sdk.Content
	if len(res.Content) > 0 {
		content = res.Content[0]
	}
	return &sdk.CreateMessageResult{Content: content, Model: res.Model, Role: res.Role, StopReason: res.StopReason}, nil
}

// needInput turns an input_required result into the end of the attempt.
func needInput(res *sdk.CallToolResult) error {
	st := mrtrState{RequestState: res.RequestState}
	var reqs []tools.InputRequest
	for id, ir := range res.InputRequests {
		var r tools.InputRequest
		var err error
		switch p := ir.(type) {
		case *sdk.ElicitParams:
			r, err = elicitation(id, p)
		case *sdk.CreateMessageWithToolsParams:
			r, err = sampling(id, p.SystemPrompt, p.MaxTokens, p.Temperature, p.StopSequences, p.Messages)
		case *sdk.CreateMessageParams:
			r, err = sampling(id, p.SystemPrompt, p.MaxTokens, p.Temperature, p.StopSequences, v2Messages(p.Messages))
		default:
			err = fmt.Errorf("input request %s: %T is not served (cairn offers no roots)", id, ir)
		}
		if err != nil {
			return fmt.Errorf("the server asked for input that cannot be given: %w", err)
		}
		reqs = append(reqs, r)
	}
	if len(reqs) == 0 {
		// Load shedding: the server is busy.
		return tools.Retryable(errors.New("the server asked for input without saying what (it is busy); try again"))
	}
	// In a stable order: the outcome is journaled.
	slices.SortFunc(reqs, func(a, b tools.InputRequest) int { return cmp.Compare(a.ID, b.ID) })
	for _, r := range reqs {
		st.IDs = append(st.IDs, r.ID)
	}
	state, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return tools.NeedInput(string(state), reqs...)
}

// inputResponses returns the responses, under the server's ids, and the
// state to send with a call made again after input_required.
func inputResponses(in tools.Input) (sdk.InputResponseMap, string, error) {
	var st mrtrState
	if err := json.Unmarshal([]byte(in.State), &st); err != nil {
		return nil, "", fmt.Errorf("the call's input state: %w", err)
	}
	out := sdk.InputResponseMap{}
	for _, id := range st.IDs {
		resp, ok := in.Response(id)
		if !ok {
			return nil, "", fmt.Errorf("no response to the server's input request %s", id)
		}
		if resp.Sample != nil {
			out[id] = sampleResult(resp)
			continue
		}
		er, err := elicitResult(resp)
		if err != nil {
			return nil, "", err
		}
		out[id] = er
	}
	return out, st.RequestState, nil
}

// elicitation makes a request of a server's elicitation; id "" names it by
// its content.
func elicitation(id string, p *sdk.ElicitParams) (tools.InputRequest, error) {
	if p == nil {
		return tools.InputRequest{}, fmt.Errorf("elicitation: no parameters")
	}
	r := tools.InputRequest{ID: id, Kind: tools.InputElicitation, Message: p.Message, URL: p.URL}
	if p.RequestedSchema != nil {
		schema, err := json.Marshal(p.RequestedSchema)
		if err != nil {
			return r, fmt.Errorf("elicitation: requested schema: %w", err)
		}
		r.Schema = schema
	}
	if r.ID == "" {
		r.ID = "elicit-" + digest(r.Message, string(r.Schema), r.URL)
	}
	return r, r.Check()
}

// sampling makes a request of a server's sampling request: its messages
// (text; other content as references, as Render shows them), system
// prompt, token cap, temperature and stop sequences. id "" names it by its
// content.
func sampling(id, system string, maxTokens int64, temperature float64, stop []string, msgs []*sdk.SamplingMessageV2) (tools.InputRequest, error) {
	p := providers.Request{System: system}
	p.Settings.MaxTokens = int(maxTokens)
	p.Settings.Stop = stop
	if temperature != 0 {
		t := temperature
		p.Settings.Temperature = &t
	}
	for _, m := range msgs {
		if m == nil {
			continue
		}
		role := providers.RoleUser
		if m.Role == "assistant" {
			role = providers.RoleAssistant
		}
		text := Render(&sdk.CallToolResult{Content: m.Content}).Content
		p.Messages = append(p.Messages, providers.Message{Role: role, Content: text})
	}
	r := tools.InputRequest{ID: id, Kind: tools.InputSampling, Sampling: &p}
	if r.ID == "" {
		b, err := json.Marshal(p)
		if err != nil {
			return r, fmt.Errorf("sampling: %w", err)
		}
		r.ID = "sample-" + digest(string(b))
	}
	return r, r.Check()
}

func v2Messages(msgs []*sdk.SamplingMessage) []*sdk.SamplingMessageV2 {
	out := make([]*sdk.SamplingMessageV2, 0, len(msgs))
	for _, m := range msgs {
		if m != nil {
			out = append(out, &sdk.SamplingMessageV2{Role: m.Role, Content: []sdk.Content{m.Content}})
		}
	}
	return out
}

// elicitResult is a person's response as MCP says it.
func elicitResult(resp tools.InputResponse) (*sdk.ElicitResult, error) {
	res := &sdk.ElicitResult{Action: cmp.Or(resp.Action, tools.ActionAccept)}
	if len(resp.Content) > 0 && res.Action == tools.ActionAccept {
		if err := json.Unmarshal(resp.Content, &res.Content); err != nil {
			return nil, fmt.Errorf("elicitation answer: %w", err)
		}
	}
	return res, nil
}

// sampleResult is the model's response as MCP says it.
func sampleResult(resp tools.InputResponse) *sdk.CreateMessageWithToolsResult {
	var r providers.Response
	if resp.Sample != nil {
		r = *resp.Sample
	}
	stop := "endTurn"
	switch r.FinishReason {
	case providers.FinishLength:
		stop = "maxTokens"
	case providers.FinishStop, "":
	default:
		stop = string(r.FinishReason)
	}
	return &sdk.CreateMessageWithToolsResult{Content: []sdk.Content{&sdk.TextContent{Text: r.Message.Content}},
		Model: cmp.Or(r.Model, "unknown"), Role: "assistant", StopReason: stop}
}

// digest is a short hash of parts.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
