package evals_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/evals"
)

// supportCases are the cases of testdata/datasets/support.{jsonl,yaml}.
func supportCases() []evals.Case {
	return []evals.Case{{
		Name:    "refund cold pizza",
		Message: "My pizza came cold, refund order A-1001.",
		Tags:    []string{"refund"},
		Expect: evals.Expect{
			Contains: []string{"refunded"},
			Trajectory: &evals.Trajectory{Mode: evals.TrajectoryInOrder, Calls: []evals.ExpectedCall{
				{Tool: "lookup_order", Args: map[string]evals.Matcher{"order_id": {Equal: json.RawMessage(`"A-1001"`)}}},
				{Tool: "refund", Args: map[string]evals.Matcher{
					"order_id":        {Regex: `^A-\d+$`},
					"amount":          {Equal: json.RawMessage(`120`)},
					"idempotency_key": {Any: true},
				}},
			}},
			Budget: &evals.Budget{Tokens: 4000, Latency: evals.Duration(30 * time.Second)},
		},
		Approvals: []evals.Approval{{Tool: "refund", Approved: true, By: "eval"}},
		Timeout:   evals.Duration(time.Minute),
	}, {
		Name:    "opening hours",
		Message: "When do you open?",
		Expect:  evals.Expect{Regex: `(?i)\b9\s*(am|:00)`},
		Grade:   []evals.GraderSpec{{Kind: "judge", Rubric: "Polite and short.", Threshold: 0.7}},
		Trials:  3,
	}}
}

func TestLoadFile(t *testing.T) {
	for _, name := range []string{"support.jsonl", "support.yaml"} {
		cases, err := evals.LoadFile(filepath.Join("testdata", "datasets", name))
		require.NoError(t, err, name)
		assert.Equal(t, supportCases(), cases, name)
	}
}

func TestLoadFileRejects(t *testing.T) {
	for name, want := range map[string]string{
		"bad_line.jsonl":      "testdata/datasets/bad_line.jsonl:4: malformed JSON: the case ends early",
		"bad_json.jsonl":      "testdata/datasets/bad_json.jsonl:2: malformed JSON at byte 13: invalid character 'x' looking for beginning of object key string",
		"bad_field.jsonl":     `testdata/datasets/bad_field.jsonl:1: unknown field "tone"`,
		"bad_duplicate.jsonl": `testdata/datasets/bad_duplicate.jsonl:3: case "a": the name is taken by the case at line 1`,
		"bad_noinput.jsonl":   `testdata/datasets/bad_noinput.jsonl:2: case "b": no input: give message, turns or replay`,
		"bad_matcher.jsonl":   `testdata/datasets/bad_matcher.jsonl:1: matcher: unknown key "$gt" (want $any, $regex or $absent)`,
		"bad_mode.yaml":       `testdata/datasets/bad_mode.yaml:3: case "b": trajectory mode "roughly": want exact, in_order, any_order or subset`,
		"bad_field.yaml":      `testdata/datasets/bad_field.yaml:4: unknown field "mesage"`,
		"bad_kind.yaml":       `testdata/datasets/bad_kind.yaml:1: case "a": grader 1 has no kind`,
		"bad_syntax.yaml":     "testdata/datasets/bad_syntax.yaml: line 2: found unexpected end of stream",
		"bad_noname.yaml":     "testdata/datasets/bad_noname.yaml:1: a case has no name",
		"bad_duration.yaml":   `testdata/datasets/bad_duration.yaml:1: duration "soon": want a duration such as "1.5s" or a number of seconds`,
		"missing.yaml":        "open testdata/datasets/missing.yaml: no such file or directory",
		"support.csv":         "testdata/datasets/support.csv: unknown dataset format: want .jsonl, .yaml or .yml",
	} {
		path := filepath.Join("testdata", "datasets", name)
		cases, err := evals.LoadFile(path)
		assert.EqualError(t, err, want, name)
		assert.Nil(t, cases, name)
		if strings.HasPrefix(name, "bad_") {
			de, ok := errors.AsType[*evals.DatasetError](err)
			if assert.True(t, ok, "%s: not a *DatasetError: %T", name, err) {
				assert.Equal(t, path, de.File, name)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	cases, err := evals.Decode(strings.NewReader(`[{name: a, turns: [hi, bye]}]`), evals.FormatYAML)
	require.NoError(t, err)
	assert.Equal(t, []evals.Case{{Name: "a", Turns: []string{"hi", "bye"}}}, cases)

	cases, err = evals.Decode(strings.NewReader("\n# nothing\n"), evals.FormatJSONL)
	require.NoError(t, err)
	assert.Empty(t, cases)

	cases, err = evals.Decode(strings.NewReader(""), evals.FormatYAML)
	require.NoError(t, err)
	assert.Empty(t, cases)

	for in, want := range map[string]string{
		`{name: a}`:                                                      "line 1: want a list of cases, or a map with only the key cases",
		`{cases: [], more: 1}`:                                           "line 1: want a list of cases, or a map with only the key cases",
		"- {name: a, message: hi, trials: -1}":                           `line 1: case "a": trials -1: negative`,
		"- {name: a, message: hi, expect: {regex: '('}}":                 "line 1: case \"a\": expect.regex: error parsing regexp: missing closing ): `(`",
		"- {name: a, message: hi, turns: [x]}":                           `line 1: case "a": give message or turns, not both`,
		"- {name: a, message: hi, grade: [{kind: judge, threshold: 2}]}": `line 1: case "a": grader 1 (judge): threshold 2 is not in [0,1]`,
	} {
		_, err := evals.Decode(strings.NewReader(in), evals.FormatYAML)
		assert.EqualError(t, err, want, in)
	}
	known := evals.Loader{Kinds: func(kind string) bool { return kind == "judge" || kind == "polite" }}
	_, err = known.LoadFile(filepath.Join("testdata", "datasets", "support.yaml"))
	assert.NoError(t, err, "known kinds")
	_, err = known.Decode(strings.NewReader("- {name: a, message: hi}\n- {name: b, message: hi, grade: [{kind: polite}, {kind: tone}]}"), evals.FormatYAML)
	assert.EqualError(t, err, `line 2: case "b": grader 2: unknown kind "tone"`)

	_, err = evals.Decode(strings.NewReader(`{"name":"a","message":"hi"} {"name":"b"}`), evals.FormatJSONL)
	assert.EqualError(t, err, "line 1: more than one JSON value on the line")
	_, err = evals.Decode(strings.NewReader(""), "csv")
	assert.EqualError(t, err, `unknown dataset format "csv": want "jsonl" or "yaml"`)
}

// FuzzDecodeJSONL checks that no dataset line crashes the decoder, and
// that an error is always a *DatasetError with a line.
func FuzzDecodeJSONL(f *testing.F) {
	for _, s := range []string{`{"name":"a","message":"hi"}`, "# c\n\n{\"name\":\"a\"}", `{"name":"a","message":"hi","timeout":1.5}`,
		`{"name":"a","message":"hi","expect":{"trajectory":{"mode":"x","calls":[]}}}`, `[`, `{"name":"a","message":"hi"}` + "\n" + `{"name":"a","message":"hi"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		_, err := evals.Decode(strings.NewReader(data), evals.FormatJSONL)
		if err != nil {
			de, ok := errors.AsType[*evals.DatasetError](err)
			require.True(t, ok, "%q: error %T %v", data, err, err)
			require.Positive(t, de.Line, "%q: %v", data, err)
		}
	})
}

// FuzzDecodeYAML checks that no YAML dataset crashes the decoder.
func FuzzDecodeYAML(f *testing.F) {
	for _, s := range []string{"- {name: a, message: hi}", "cases:\n  - name: a\n    message: hi\n", "- name: a\n  message: \"hi", "{1: 2}",
		"- {name: a, message: hi, expect: {output: {1: [x]}}}", "- &a {name: a, message: hi}\n- *a", "- {name: a, message: hi, timeout: .inf}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		_, err := evals.Decode(strings.NewReader(data), evals.FormatYAML)
		if err != nil {
			_, ok := errors.AsType[*evals.DatasetError](err)
			require.True(t, ok, "%q: error %T %v", data, err, err)
		}
	})
}
