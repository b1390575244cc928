package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/tools"
)

// Render turns a tool's result into what the model reads, as text:
//
//   - text blocks, as they are, one after another on their own lines;
//   - images and audio as references, never their bytes:
//     "[image: image/png, 1234 bytes]";
//   - resource links as references: "[resource link: file:///a.txt
//     (a.txt, text/plain)]";
//   - embedded resources as a reference line, followed by their text for
//     a text resource: "[resource: file:///a.txt (text/plain)]";
//   - structured content as compact JSON, unless a text block already
//     holds the same JSON (as the specification asks servers to do).
//
// IsError is the result's isError. The caller (tools.Tool.Call) makes the
// text valid UTF-8 and truncates it at the tool's MaxResultBytes.
func Render(res *sdk.CallToolResult) tools.Result {
	if res == nil {
		return tools.Result{Content: "the server returned no result", IsError: true}
	}
	var parts []string
	for _, c := range res.Content {
		switch c := c.(type) {
		case *sdk.TextContent:
			parts = append(parts, c.Text)
		case *sdk.ImageContent:
			parts = append(parts, fmt.Sprintf("[image: %s, %d bytes]", or(c.MIMEType, "unknown type"), len(c.Data)))
		case *sdk.AudioContent:
			parts = append(parts, fmt.Sprintf("[audio: %s, %d bytes]", or(c.MIMEType, "unknown type"), len(c.Data)))
		case *sdk.ResourceLink:
			parts = append(parts, fmt.Sprintf("[resource link: %s (%s)]", c.URI, describe(c.Name, c.MIMEType)))
		case *sdk.EmbeddedResource:
			r := c.Resource
			switch {
			case r == nil:
				parts = append(parts, "[resource: empty]")
			case r.Text != "" || len(r.Blob) == 0:
				parts = append(parts, fmt.Sprintf("[resource: %s (%s)]\n%s", r.URI, or(r.MIMEType, "text"), r.Text))
			default:
				parts = append(parts, fmt.Sprintf("[resource: %s (%s, %d bytes)]", r.URI, or(r.MIMEType, "binary"), len(r.Blob)))
			}
		case nil:
		default:
			parts = append(parts, fmt.Sprintf("[content of type %T, not shown]", c))
		}
	}
	if res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil && !holds(parts, b) {
			parts = append(parts, string(b))
		}
	}
	content := strings.Join(parts, "\n")
	if content == "" && !res.IsError {
		content = "(the tool returned nothing)"
	}
	return tools.Result{Content: content, IsError: res.IsError}
}

// holds reports whether one of the parts is the JSON b, whatever its
// spacing and key order.
func holds(parts []string, b []byte) bool {
	var want any
	if json.Unmarshal(b, &want) != nil {
		return false
	}
	wb, _ := json.Marshal(want)
	for _, p := range parts {
		var got any
		if json.Unmarshal([]byte(p), &got) != nil {
			continue
		}
		if gb, _ := json.Marshal(got); bytes.Equal(gb, wb) {
			return true
		}
	}
	return false
}

func describe(name, mime string) string {
	switch {
	case name != "" && mime != "":
		return name + ", " + mime
	case name != "":
		return name
	}
	return or(mime, "unknown type")
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
