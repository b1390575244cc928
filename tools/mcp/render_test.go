package mcp_test

import (
	"encoding/json"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"

	"github.com/cairn-dev/cairn/tools"
	"github.com/cairn-dev/cairn/tools/mcp"
)

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  *sdk.CallToolResult
		want tools.Result
	}{
		{"nil", nil, tools.Result{Content: "the server returned no result", IsError: true}},
		{"empty", &sdk.CallToolResult{}, tools.Result{Content: "(the tool returned nothing)"}},
		{"error", &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "bad city"}}},
			tools.Result{Content: "bad city", IsError: true}},
		{"texts", &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "a"}, &sdk.TextContent{Text: "b"}}},
			tools.Result{Content: "a\nb"}},
		{"audio and blob", &sdk.CallToolResult{Content: []sdk.Content{&sdk.AudioContent{MIMEType: "audio/wav", Data: []byte("RIFF")},
			&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "file:///x.bin", Blob: []byte{1, 2, 3}}},
			&sdk.ResourceLink{URI: "file:///y"}}},
			tools.Result{Content: "[audio: audio/wav, 4 bytes]\n[resource: file:///x.bin (binary, 3 bytes)]\n[resource link: file:///y (unknown type)]"}},
		{"structured, also as text", &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: `{ "b": 1, "a": [true] }`}},
			StructuredContent: map[string]any{"a": []any{true}, "b": 1}},
			tools.Result{Content: `{ "b": 1, "a": [true] }`}},
		{"structured only", &sdk.CallToolResult{StructuredContent: map[string]any{"t": 21.5}},
			tools.Result{Content: `{"t":21.5}`}},
	} {
		assert.Equal(t, tc.want, mcp.Render(tc.res), tc.name)
	}
}

// FuzzRender decodes arbitrary bytes as a server's tools/call result, as
// the go-sdk does, and renders it: never a panic.
func FuzzRender(f *testing.F) {
	for _, seed := range []string{
		`{"content":[{"type":"text","text":"hi"}]}`,
		`{"content":[{"type":"image","data":"iVBORw0KGgo=","mimeType":"image/png"}],"isError":true}`,
		`{"content":[{"type":"resource","resource":{"uri":"file:///a","text":"x"}}],"structuredContent":{"a":1}}`,
		`{"content":[{"type":"resource_link","uri":"file:///a","name":"a"}],"structuredContent":[1,2]}`,
		`{"content":[{"type":"audio","data":"!!"}]}`,
		`{"content":[{"type":"hologram"}]}`,
		`{"content":null,"structuredContent":null}`,
		`{"content":[{"type":"text","text":"\ud800"}]}`,
		`{"content":[{"type":"resource","resource":null}]}`,
		`{"content":[{"type":"tool_result","content":[{"type":"text","text":"x"}]}]}`,
		`[]`, `null`, `{`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var res sdk.CallToolResult
		if json.Unmarshal(b, &res) != nil {
			return
		}
		_ = mcp.Render(&res)
	})
}
