package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cairn-dev/cairn/providers"
)

// A call may need input before it can finish: an MCP server asks the
// person behind the client a question (elicitation) or asks the client's
// model for a completion (sampling) while it serves the call. A tool does
// not wait for that input inside its call, which would hold a worker for as
// long as a person takes: it returns NeedInput, which ends the attempt with
// what it needs, and the caller gets the input (asks the person, calls the
// model), then calls the tool again, the same call with the same
// idempotency key, with the responses in its context (InputFrom). A tool
// that meets the same request again answers it from there.

// InputKind says who gives the input a call needs.
type InputKind string

// Kinds of input.
const (
	// InputElicitation asks a person: a form (Message and a JSON Schema
	// of the object to fill, Schema) or a page to visit (URL).
	InputElicitation InputKind = "elicitation"
	// InputSampling asks the model that drives the caller for a
	// completion of Sampling.
	InputSampling InputKind = "sampling"
)

// Elicitation actions, after MCP's: what a person did with a request.
const (
	ActionAccept  = "accept"  // answered: Content holds the answer
	ActionDecline = "decline" // refused to answer
	ActionCancel  = "cancel"  // dismissed the request without choosing
)

// InputRequest is one thing a call needs before it can finish.
type InputRequest struct {
	// ID names the request among those of the call, across its rounds:
	// the tool chooses it, and finds its response by it (Input.Response).
	// A request asked again with the same ID is answered from the
	// recorded response.
	ID   string    `json:"id"`
	Kind InputKind `json:"kind"`
	// Message is what the person is asked (InputElicitation).
	Message string `json:"message,omitempty"`
	// Schema is the JSON Schema of the object the person fills in
	// (InputElicitation, a form); empty for a URL request.
	Schema json.RawMessage `json:"schema,omitempty"`
	// URL is a page the person is asked to visit (InputElicitation in
	// MCP's url mode), instead of filling a form.
	URL string `json:"url,omitempty"`
	// Sampling is the request for the model (InputSampling).
	Sampling *providers.Request `json:"sampling,omitempty"`
}

// InputResponse answers an InputRequest.
type InputResponse struct {
	// ID is the request's.
	ID string `json:"id"`
	// Action is what the person did (ActionAccept, ActionDecline or
	// ActionCancel) for an elicitation; Content is the object the person
	// gave, valid against the request's Schema, when accepted; By says
	// who answered.
	Action  string          `json:"action,omitempty"`
	Content json.RawMessage `json:"content,omitempty"`
	By      string          `json:"by,omitempty"`
	// Sample is the model's answer to a sampling request.
	Sample *providers.Response `json:"sample,omitempty"`
}

// Input is what a call made again after NeedInput is given: the state the
// tool returned with its last NeedInput, and the responses to every
// request of the call's earlier rounds, oldest first.
type Input struct {
	State     string          `json:"state,omitempty"`
	Responses []InputResponse `json:"responses,omitempty"`
}

// Response returns the latest response to the request id.
func (in Input) Response(id string) (InputResponse, bool) {
	for i := len(in.Responses) - 1; i >= 0; i-- {
		if in.Responses[i].ID == id {
			return in.Responses[i], true
		}
	}
	return InputResponse{}, false
}

// NeedsInputError is the error of NeedInput: the attempt ended because the
// call needs input. It is not a failure: the caller gets the input and
// calls the tool again (see InputFrom).
type NeedsInputError struct {
	Requests []InputRequest
	// State is opaque to the caller, which gives it back with the
	// responses (Input.State): what the tool needs to go on.
	State string
}

func (e *NeedsInputError) Error() string {
	var b strings.Builder
	b.WriteString("the call needs input:")
	for _, r := range e.Requests {
		fmt.Fprintf(&b, " %s %q", r.Kind, r.ID)
	}
	return b.String()
}

// NeedInput ends a call's attempt with the input it needs: Call returns
// the *NeedsInputError, and a caller that can get the input (an agent
// run) calls the tool again with the responses and state in its context.
// A caller that cannot (a tool called outside a run) has the error. Each
// request needs an ID, unique in the call, and a Kind.
func NeedInput(state string, reqs ...InputRequest) error {
	return &NeedsInputError{Requests: reqs, State: state}
}

// AsNeedsInput returns the *NeedsInputError in err's chain, if any.
func AsNeedsInput(err error) (*NeedsInputError, bool) {
	var ni *NeedsInputError
	ok := errors.As(err, &ni)
	return ni, ok
}

type inputKey struct{}

// WithInput returns a context that gives a call made again the input
// gathered for it. The layer that calls tools sets it.
func WithInput(ctx context.Context, in Input) context.Context {
	return context.WithValue(ctx, inputKey{}, in)
}

// InputFrom returns the input of a call made again after NeedInput; ok is
// false on a call's first round.
func InputFrom(ctx context.Context) (in Input, ok bool) {
	in, ok = ctx.Value(inputKey{}).(Input)
	return in, ok
}

// Check reports what is wrong with a request, if anything: no ID, an
// unknown kind, an elicitation with neither a form's schema nor a URL, a
// schema that is not a JSON Schema of an object, or a sampling request
// without messages. A request from another system (an MCP server) is
// checked before anyone is asked.
func (r InputRequest) Check() error {
	if r.ID == "" {
		return errors.New("input request without an id")
	}
	switch r.Kind {
	case InputElicitation:
		if r.URL != "" && len(r.Schema) == 0 {
			return nil
		}
		if len(r.Schema) == 0 {
			return fmt.Errorf("input request %s: no schema and no url", r.ID)
		}
		if _, err := newRawSchema(r.Schema); err != nil {
			return fmt.Errorf("input request %s: requested %w", r.ID, err)
		}
		return nil
	case InputSampling:
		if r.Sampling == nil || len(r.Sampling.Messages) == 0 {
			return fmt.Errorf("input request %s: sampling without messages", r.ID)
		}
		return nil
	default:
		return fmt.Errorf("input request %s: unknown kind %q", r.ID, r.Kind)
	}
}

// CheckAnswer checks a person's answer to an elicitation: action is one
// of ActionAccept (or empty, for accept), ActionDecline and ActionCancel;
// an accepted form's content must be a JSON object valid against the
// request's Schema. The error says what is wrong, for the person.
func (r InputRequest) CheckAnswer(action string, content json.RawMessage) error {
	switch action {
	case ActionDecline, ActionCancel:
		return nil
	case "", ActionAccept:
	default:
		return fmt.Errorf("unknown action %q: want %s, %s or %s", action, ActionAccept, ActionDecline, ActionCancel)
	}
	if len(r.Schema) == 0 {
		return nil // a URL to visit: accepting says it was done
	}
	s, err := newRawSchema(r.Schema)
	if err != nil {
		return fmt.Errorf("the requested schema: %w", err)
	}
	var v map[string]any
	if err := s.decode("answer", content, &v); err != nil {
		var ae *ArgumentError
		if !errors.As(err, &ae) {
			return err
		}
		issues := make([]string, len(ae.Issues))
		for i, is := range ae.Issues {
			issues[i] = is.String()
		}
		return fmt.Errorf("the answer does not match the requested schema: %s", strings.Join(issues, "; "))
	}
	return nil
}
