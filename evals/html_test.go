package evals_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
)

func TestWriteHTML(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, sampleReport().WriteHTML(&buf))
	page := buf.String()

	// Well-formed: every element closed, as XML reads it.
	dec := xml.NewDecoder(strings.NewReader(page))
	dec.Strict = false
	dec.AutoClose = xml.HTMLAutoClose
	dec.Entity = xml.HTMLEntity
	var stack []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "the page does not parse")
		switch tok := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tok.Name.Local)
		case xml.EndElement:
			require.NotEmpty(t, stack, "</%s> closes nothing", tok.Name.Local)
			require.Equal(t, stack[len(stack)-1], tok.Name.Local, "</%s> closes <%s>", tok.Name.Local, stack[len(stack)-1])
			stack = stack[:len(stack)-1]
		}
	}
	assert.Empty(t, stack, "elements left open")

	// As a browser reads it: no script, no external asset, the hostile
	// answer as text.
	doc, err := html.Parse(strings.NewReader(page))
	require.NoError(t, err)
	var (
		texts    []string
		elements = map[string]int{}
	)
	for n := range doc.Descendants() {
		switch n.Type {
		case html.ElementNode:
			elements[n.Data]++
			for _, a := range n.Attr {
				if a.Key == "src" || a.Key == "href" {
					t.Errorf("<%s %s=%q>: the page must not load anything", n.Data, a.Key, a.Val)
				}
			}
		case html.TextNode:
			texts = append(texts, n.Data)
		}
	}
	assert.Zero(t, elements["script"], "a <script> element")
	assert.Zero(t, elements["link"], "a <link> element")
	assert.Equal(t, 1, elements["style"], "the inline CSS")
	assert.Equal(t, 4, elements["details"], "a row per case")
	assert.Equal(t, 7, strings.Count(page, `class="trial`), "a block per trial")
	assert.Contains(t, texts, `<script>alert("x")</script> & ]]> <!-- --> {{.}}[31m`, "the hostile answer, as text")
	all := strings.Join(texts, "\n")
	for _, want := range []string{"The answer is curt:\nno greeting.", "refund {\"order_id\":\"A-1001\",\"amount\":120}",
		"refunded 120 euros", "judge: no answer after 3 tries", "refund waited for approval and no rule decided it: rejected",
		"worker stopped before journal commit 2", "model: 429 Too Many Requests", "contains 2/2, trajectory 2/2"} {
		assert.Contains(t, all, want)
	}
}
