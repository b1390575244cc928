package tools_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// TestNeedInput: a tool that needs input ends its call with the requests;
// called again with the responses in its context, it finishes.
func TestNeedInput(t *testing.T) {
	form := tools.InputRequest{ID: "who", Kind: tools.InputElicitation, Message: "Who are you?",
		Schema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string","minLength":1}},"required":["name"]}`)}
	greet := tools.MustNew("greet", "Greet the person.", func(ctx context.Context, _ struct{}) (string, error) {
		in, _ := tools.InputFrom(ctx)
		r, ok := in.Response("who")
		if !ok {
			return "", tools.NeedInput("round-1", form)
		}
		var who struct{ Name string }
		if err := json.Unmarshal(r.Content, &who); err != nil {
			return "", err
		}
		return "hello " + who.Name + " (" + in.State + ")", nil
	})
	_, err := greet.Call(context.Background(), json.RawMessage(`{}`))
	ni, ok := tools.AsNeedsInput(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, "round-1", ni.State)
	assert.Equal(t, []tools.InputRequest{form}, ni.Requests)

	ctx := tools.WithInput(context.Background(), tools.Input{State: ni.State,
		Responses: []tools.InputResponse{{ID: "who", Action: tools.ActionAccept, Content: json.RawMessage(`{"name":"Ann"}`)}}})
	res, err := greet.Call(ctx, json.RawMessage(`{}`))
	require.NoError(t, err)
	assert.Equal(t, `"hello Ann (round-1)"`, res.Content)
}

// TestInputRequestCheck: requests from another system are checked, and so
// are a person's answers, against the requested schema.
func TestInputRequestCheck(t *testing.T) {
	form := tools.InputRequest{ID: "f", Kind: tools.InputElicitation, Message: "Age?",
		Schema: json.RawMessage(`{"type":"object","properties":{"age":{"type":"integer","minimum":0}},"required":["age"]}`)}
	require.NoError(t, form.Check())
	for name, bad := range map[string]tools.InputRequest{
		"no id":          {Kind: tools.InputElicitation, Schema: form.Schema},
		"unknown kind":   {ID: "x", Kind: "roots"},
		"no schema":      {ID: "x", Kind: tools.InputElicitation, Message: "?"},
		"not an object":  {ID: "x", Kind: tools.InputElicitation, Schema: json.RawMessage(`{"type":"string"}`)},
		"not JSON":       {ID: "x", Kind: tools.InputElicitation, Schema: json.RawMessage(`{"type":`)},
		"bad schema":     {ID: "x", Kind: tools.InputElicitation, Schema: json.RawMessage(`{"type":"object","properties":{"a":{"type":7}}}`)},
		"empty sampling": {ID: "x", Kind: tools.InputSampling, Sampling: &providers.Request{}},
	} {
		assert.Error(t, bad.Check(), name)
	}
	assert.NoError(t, tools.InputRequest{ID: "u", Kind: tools.InputElicitation, URL: "https://example.com/pay"}.Check())

	assert.NoError(t, form.CheckAnswer("", json.RawMessage(`{"age":42}`)))
	assert.NoError(t, form.CheckAnswer(tools.ActionDecline, nil))
	assert.NoError(t, form.CheckAnswer(tools.ActionCancel, nil))
	err := form.CheckAnswer(tools.ActionAccept, json.RawMessage(`{"age":-1}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not match the requested schema")
	assert.Contains(t, err.Error(), "/age")
	assert.Error(t, form.CheckAnswer("", json.RawMessage(`{"age":"old"}`)))
	assert.Error(t, form.CheckAnswer("", json.RawMessage(`not json`)))
	assert.Error(t, form.CheckAnswer("maybe", nil))
}
