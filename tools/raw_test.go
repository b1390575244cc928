package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/tools"
)

const echoSchema = `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",
	"properties":{"message":{"type":"string","minLength":1},"times":{"type":"integer","minimum":1}},
	"required":["message"],"additionalProperties":false}`

func TestNewRawValidatesAndPassesArguments(t *testing.T) {
	var got []string
	echo, err := tools.NewRaw("echo", "Echo a message.", json.RawMessage(echoSchema),
		func(ctx context.Context, args json.RawMessage) (tools.Result, error) {
			got = append(got, string(args))
			return tools.Result{Content: "echo: " + string(args)}, nil
		})
	require.NoError(t, err)

	assert.JSONEq(t, `{"type":"object","properties":{"message":{"type":"string","minLength":1},"times":{"type":"integer","minimum":1}},
		"required":["message"],"additionalProperties":false}`, string(echo.Schema()), "$schema is not shown to the model")
	assert.NotContains(t, string(echo.Definition().Parameters), "$schema")

	res, err := echo.Call(context.Background(), json.RawMessage(`{"message":"hi","times":2}`))
	require.NoError(t, err)
	assert.Equal(t, tools.Result{Content: `echo: {"message":"hi","times":2}`}, res)

	for _, bad := range []string{`{}`, `{"message":""}`, `{"message":"hi","times":0}`, `{"message":"hi","x":1}`, `{"message":`, "\xff"} {
		res, err := echo.Call(context.Background(), json.RawMessage(bad))
		require.NoError(t, err, bad)
		assert.True(t, res.IsError, bad)
		assert.Contains(t, res.Content, `invalid arguments for tool "echo"`, bad)
	}
	assert.Len(t, got, 1, "bad arguments never reach the function")
}

func TestNewRawResults(t *testing.T) {
	ctx := context.Background()
	mk := func(res tools.Result, err error, opts ...tools.Option) *tools.Tool {
		tool, e := tools.NewRaw("t", "", json.RawMessage(`{"type":"object"}`),
			func(context.Context, json.RawMessage) (tools.Result, error) { return res, err }, opts...)
		require.NoError(t, e)
		return tool
	}
	res, err := mk(tools.Result{Content: "no such city", IsError: true}, nil).Call(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, tools.Result{Content: "no such city", IsError: true}, res, "IsError is the function's")

	res, err = mk(tools.Result{Content: strings.Repeat("é", 100) + "\xff"}, nil, tools.MaxResultBytes(51)).Call(ctx, nil)
	require.NoError(t, err)
	assert.True(t, res.Truncated)
	assert.True(t, strings.HasPrefix(res.Content, strings.Repeat("é", 25)+"\n[truncated: the result was 203 bytes"), res.Content)

	res, err = mk(tools.Result{}, errors.New("boom")).Call(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, tools.Result{Content: "tool t failed: boom", IsError: true}, res)

	_, err = mk(tools.Result{}, tools.Retryable(errors.New("503"))).Call(ctx, nil)
	require.Error(t, err, "a retryable error is a failed attempt")
	_, err = mk(tools.Result{}, tools.Fatal(errors.New("revoked"))).Call(ctx, nil)
	assert.True(t, tools.IsFatal(err))
}

func TestNewRawApproval(t *testing.T) {
	fn := func(context.Context, json.RawMessage) (tools.Result, error) { return tools.Result{}, nil }
	big := func(args json.RawMessage) bool { return strings.Contains(string(args), `"big"`) }
	tool, err := tools.NewRaw("t", "", json.RawMessage(`{"type":"object","properties":{"size":{"type":"string"}}}`), fn,
		tools.RequireApprovalIf(big))
	require.NoError(t, err)
	need, err := tool.NeedsApproval(json.RawMessage(`{"size":"big"}`))
	require.NoError(t, err)
	assert.True(t, need)
	need, err = tool.NeedsApproval(json.RawMessage(`{"size":"small"}`))
	require.NoError(t, err)
	assert.False(t, need)

	_, err = tools.NewRaw("t", "", json.RawMessage(`{"type":"object"}`), fn,
		tools.RequireApprovalIf(func(RefundArgs) bool { return true }))
	assert.ErrorContains(t, err, "must be a func(json.RawMessage) bool")
}

func TestNewRawBadSchemas(t *testing.T) {
	fn := func(context.Context, json.RawMessage) (tools.Result, error) { return tools.Result{}, nil }
	for schema, want := range map[string]string{
		``:                                      "want a JSON object",
		`[]`:                                    "want a JSON object",
		`null`:                                  "want a JSON object",
		`{}`:                                    `want "object"`,
		`{"type":"string"}`:                     `want "object"`,
		`{"type":"object","minProperties":"x"}`: "compile schema",
		`{"type":"object","$ref":"https://example.com/s.json"}`: "compile schema",
	} {
		_, err := tools.NewRaw("t", "", json.RawMessage(schema), fn)
		assert.ErrorContains(t, err, want, schema)
	}
	// An unknown $schema is checked by the default draft.
	_, err := tools.NewRaw("t", "", json.RawMessage(`{"$schema":"https://example.com/my-draft","type":"object"}`), fn)
	assert.NoError(t, err)
}

func TestReportProgress(t *testing.T) {
	var got []tools.Progress
	ctx := tools.WithProgress(context.Background(), func(p tools.Progress) { got = append(got, p) })
	tools.ReportProgress(ctx, tools.Progress{Progress: 1, Total: 3, Message: "one"})
	tools.ReportProgress(context.Background(), tools.Progress{Progress: 2}) // no reporter: nothing
	assert.Equal(t, []tools.Progress{{Progress: 1, Total: 3, Message: "one"}}, got)
}

// FuzzNewRaw feeds arbitrary schemas and arguments to NewRaw and Call, as
// an MCP server and a model might send them: no panic, ever.
func FuzzNewRaw(f *testing.F) {
	f.Add(echoSchema, `{"message":"hi"}`)
	f.Add(`{"type":"object","properties":{"a":{"$ref":"#/$defs/x"}},"$defs":{"x":{"type":"integer"}}}`, `{"a":1}`)
	f.Add(`{"type":"object","patternProperties":{"(":{}}}`, `{}`)
	f.Add(`{"type":"object","$ref":"#"}`, `{"a":[]}`)
	f.Add(`{"type":"object","properties":{"n":{"type":"number","multipleOf":1e-300}}}`, `{"n":1e300}`)
	f.Fuzz(func(t *testing.T, schema, args string) {
		tool, err := tools.NewRaw("t", "", json.RawMessage(schema),
			func(_ context.Context, a json.RawMessage) (tools.Result, error) {
				return tools.Result{Content: string(a)}, nil
			})
		if err != nil {
			return
		}
		_, _ = tool.Call(context.Background(), json.RawMessage(args))
	})
}
