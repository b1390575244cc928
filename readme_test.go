// Package cairn_test checks README.md against the code: every Go snippet in
// the README is a region of a compiled example or test, quoted exactly, so
// a change that breaks a snippet breaks the build or this test.
package cairn_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite README.md's Go snippets from the regions they quote")

// A README snippet is a ```go block right after a marker line that names
// its source: <!-- snippet: path/to/file_test.go#name -->. The region is
// the lines between "// snippet:name" and "// end snippet:name" in that
// file, with their common indentation removed.
var marker = regexp.MustCompile(`^<!-- snippet: (\S+)#(\S+) -->$`)

func TestReadmeSnippets(t *testing.T) {
	data, err := os.ReadFile("README.md")
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")

	var out []string
	quoted := 0
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		out = append(out, line)
		if line == "```go" {
			t.Errorf("README.md line %d: a Go snippet without a <!-- snippet: file#name --> line before it", i+1)
			continue
		}
		m := marker.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		require.Less(t, i+1, len(lines), "README.md line %d: a marker at the end of the file", i+1)
		require.Equal(t, "```go", lines[i+1], "README.md line %d: a snippet marker must be followed by a ```go block", i+1)
		end := i + 2
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		require.Less(t, end, len(lines), "README.md line %d: the Go block never ends", i+2)

		want, err := region(m[1], m[2])
		require.NoError(t, err, "README.md line %d", i+1)
		got := strings.Join(lines[i+2:end], "\n")
		if !*update {
			assert.Equal(t, want, got, "README.md line %d quotes %s#%s; run go test -run TestReadmeSnippets -update . to copy it from there", i+3, m[1], m[2])
		}
		out = append(out, "```go", want, "```")
		quoted++
		i = end
	}
	assert.Positive(t, quoted, "README.md quotes no snippet")
	if *update {
		require.NoError(t, os.WriteFile("README.md", []byte(strings.Join(out, "\n")), 0o644))
	}
}

// region returns the named region of a Go file, unindented.
func region(path, name string) (string, error) {
	data, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		return "", err
	}
	begin, finish := "// snippet:"+name, "// end snippet:"+name
	var body []string
	in, found := false, false
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		switch strings.TrimSpace(line) {
		case begin:
			if found {
				return "", fmt.Errorf("%s: two regions named %s", path, name)
			}
			in, found = true, true
			continue
		case finish:
			// An end marker joined to "// Output:" makes one comment,
			// and go test then no longer runs the example.
			if i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), "// Output:") {
				return "", fmt.Errorf("%s: leave a blank line between %q and // Output:", path, finish)
			}
			in = false
			continue
		}
		if in {
			body = append(body, line)
		}
	}
	if !found || in || len(body) == 0 {
		return "", fmt.Errorf("%s: no complete region %q (// snippet:%s ... // end snippet:%s)", path, name, name, name)
	}
	indent, set := "", false
	for _, line := range body {
		if strings.TrimSpace(line) == "" {
			continue
		}
		lead := line[:len(line)-len(strings.TrimLeft(line, "\t"))]
		if !set || len(lead) < len(indent) {
			indent, set = lead, true
		}
	}
	for i, line := range body {
		body[i] = strings.TrimPrefix(line, indent)
	}
	return strings.Join(body, "\n"), nil
}
