package mcp_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/syncbuf"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// TestSampling: a server's sampling request, made while it serves a call,
// is answered by the model of Options.Sampling; without one, the client
// does not offer sampling and the server's request fails.
func TestSampling(t *testing.T) {
	server := sdk.NewServer(&sdk.Implementation{Name: "sampler", Version: "1"}, nil)
	sdk.AddTool(server, &sdk.Tool{Name: "summarize", Description: "Summarize, with the client's model."},
		func(ctx context.Context, req *sdk.CallToolRequest, in struct {
			Text string `json:"text"`
		}) (*sdk.CallToolResult, any, error) {
			// Protocol 2026-07-28: the server asks through the
			// call's result (InputRequests), and the client calls
			// again with the answer.
			if r, ok := req.Params.InputResponses["s"]; ok {
				var text, model string
				switch r := r.(type) {
				case *sdk.CreateMessageResult:
					text, model = r.Content.(*sdk.TextContent).Text, r.Model
				case *sdk.CreateMessageWithToolsResult:
					text, model = r.Content[0].(*sdk.TextContent).Text, r.Model
				default:
					text = fmt.Sprintf("unexpected %T", r)
				}
				return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: model + " said: " + text}}}, nil, nil
			}
			return &sdk.CallToolResult{InputRequests: sdk.InputRequestMap{"s": &sdk.CreateMessageParams{MaxTokens: 50,
				SystemPrompt: "Be brief.", Messages: []*sdk.SamplingMessage{{Role: "user", Content: &sdk.TextContent{Text: "Summarize: " + in.Text}}}}}}, nil, nil
		})
	var got providers.Request
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		got = req
		return providers.Response{Model: "scripted", Message: providers.Message{Content: "short"}}, nil
	})
	c, err := mcp.NewClient("sampler", mcp.InProcess(server), mcp.Options{Sampling: model})
	require.NoError(t, err)
	defer c.Close()
	set, err := c.Tools(ctxT(t))
	require.NoError(t, err)
	res, err := call(t, ctxT(t), set, "summarize", `{"text":"a long story"}`)
	require.NoError(t, err)
	assert.Equal(t, "scripted said: short", res.Content)
	assert.Equal(t, "Be brief.", got.System)
	assert.Equal(t, 50, got.Settings.MaxTokens)
	assert.Equal(t, []providers.Message{{Role: providers.RoleUser, Content: "Summarize: a long story"}}, got.Messages)

	without, err := mcp.NewClient("sampler", mcp.InProcess(server), mcp.Options{})
	require.NoError(t, err)
	defer without.Close()
	set, err = without.Tools(ctxT(t))
	require.NoError(t, err)
	res, err = call(t, ctxT(t), set, "summarize", `{"text":"x"}`)
	require.NoError(t, err)
	assert.True(t, res.IsError, "%+v", res)
}

// TestEverythingSampling: the reference server offers its sampling tool
// to a client that declares sampling, and gets the model's answer.
func TestEverythingSampling(t *testing.T) {
	t.Parallel()
	node, script := everything(t)
	var stderr syncbuf.Buffer
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		return providers.Response{Model: "scripted", Message: providers.Message{Content: "sampled: " + req.Messages[0].Content}}, nil
	})
	c, err := mcp.NewClient("everything", mcp.CommandFunc(func() *exec.Cmd {
		cmd := exec.Command(node, script, "stdio")
		cmd.Stderr = &stderr
		return cmd
	}), mcp.Options{Sampling: model})
	require.NoError(t, err)
	defer c.Close()
	set, err := c.Tools(ctxT(t))
	require.NoError(t, err, stderr.String())
	res, err := call(t, ctxT(t), set, "trigger-sampling-request", `{"prompt":"hello","maxTokens":20}`)
	require.NoError(t, err, stderr.String())
	assert.False(t, res.IsError, res.Content)
	assert.Contains(t, res.Content, "sampled: ")
	assert.Contains(t, res.Content, "hello")
}
