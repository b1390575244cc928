package evals

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DatasetError is why a dataset was rejected: the file, the line, and
// what is wrong there. For YAML, the line is that of the case (the "-"
// that starts it), or of the document when the file as a whole is bad.
type DatasetError struct {
	// File is the dataset's path ("" for Decode).
	File string
	// Line counts from 1; 0 when the error is not on a line.
	Line int
	Err  error
}

// Error reads "file:line: what", as compilers write errors.
func (e *DatasetError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	case e.File != "":
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return e.Err.Error()
}

func (e *DatasetError) Unwrap() error { return e.Err }

// The dataset formats Decode reads.
const (
	// FormatJSONL is a case per line, as JSON; blank lines and lines
	// whose first non-space character is # are skipped.
	FormatJSONL = "jsonl"
	// FormatYAML is a list of cases, or a map whose only key is cases
	// and holds that list.
	FormatYAML = "yaml"
)

// Loader reads datasets. Its zero value takes any grader kind; LoadFile
// and Decode are those of the zero Loader.
type Loader struct {
	// Kinds, if set, says whether a grader kind is known (a runner's
	// built-in or registered graders), so that a case naming another is
	// rejected with its line rather than when it runs.
	Kinds func(kind string) bool
}

// LoadFile reads the cases of a dataset file: JSON Lines (.jsonl) or YAML
// (.yaml, .yml), see Decode. An error names the file and line, as a
// *DatasetError.
func LoadFile(path string) ([]Case, error) { return Loader{}.LoadFile(path) }

// Decode reads the cases of a dataset in format; see Loader.Decode.
func Decode(r io.Reader, format string) ([]Case, error) { return Loader{}.Decode(r, format) }

// LoadFile reads the cases of a dataset file: JSON Lines (.jsonl) or YAML
// (.yaml, .yml), see Decode. An error names the file and line, as a
// *DatasetError.
func (l Loader) LoadFile(path string) ([]Case, error) {
	var format string
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl":
		format = FormatJSONL
	case ".yaml", ".yml":
		format = FormatYAML
	default:
		return nil, &DatasetError{File: path, Err: errors.New("unknown dataset format: want .jsonl, .yaml or .yml")}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cases, err := l.Decode(f, format)
	if de, ok := errors.AsType[*DatasetError](err); ok {
		de.File = path
	}
	return cases, err
}

// Decode reads the cases of a dataset in format, FormatJSONL or
// FormatYAML. Cases are read with their JSON field names (a YAML case is
// turned into JSON first, so both formats read matchers and durations
// alike), and rejected, as a *DatasetError with the line, when a line is
// not JSON, a field is unknown, a case has no name or no input (a
// message, turns or a replay), two cases have one name, a trajectory's
// mode is not one of the TrajectoryModes, a regular expression does not
// compile, or a grader has no kind, or one Kinds does not know. (With no
// Kinds, a grader's kind is not checked: a runner rejects kinds it lacks
// when it runs the case.)
func (l Loader) Decode(r io.Reader, format string) ([]Case, error) {
	var (
		cases []Case
		lines []int
		err   error
	)
	switch format {
	case FormatJSONL:
		cases, lines, err = decodeJSONL(r)
	case FormatYAML:
		cases, lines, err = decodeYAML(r)
	default:
		return nil, fmt.Errorf("unknown dataset format %q: want %q or %q", format, FormatJSONL, FormatYAML)
	}
	if err != nil {
		return nil, err
	}
	first := map[string]int{}
	for i := range cases {
		if err := checkDatasetCase(&cases[i], l.Kinds); err != nil {
			return nil, &DatasetError{Line: lines[i], Err: err}
		}
		if at, ok := first[cases[i].Name]; ok {
			return nil, &DatasetError{Line: lines[i], Err: fmt.Errorf("case %q: the name is taken by the case at line %d", cases[i].Name, at)}
		}
		first[cases[i].Name] = lines[i]
	}
	return cases, nil
}

// decodeJSONL reads a case per line, and the line of each.
func decodeJSONL(r io.Reader) ([]Case, []int, error) {
	var (
		cases []Case
		lines []int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		c, err := decodeCaseJSON(line)
		if err != nil {
			return nil, nil, &DatasetError{Line: n, Err: err}
		}
		cases = append(cases, c)
		lines = append(lines, n)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return cases, lines, nil
}

// decodeYAML reads a YAML list of cases (or {cases: [...]}), and the line
// of each: each case is decoded into a generic value, then encoded to
// JSON, and that JSON decoded as a case.
func decodeYAML(r io.Reader) ([]Case, []int, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil // an empty file has no cases
		}
		return nil, nil, &DatasetError{Err: yamlError(err)}
	}
	list := &doc
	if list.Kind == yaml.DocumentNode && len(list.Content) == 1 {
		list = list.Content[0]
	}
	if list.Kind == yaml.MappingNode {
		if len(list.Content) != 2 || list.Content[0].Value != "cases" {
			return nil, nil, &DatasetError{Line: list.Line, Err: errors.New("want a list of cases, or a map with only the key cases")}
		}
		list = list.Content[1]
	}
	if list.Kind != yaml.SequenceNode {
		return nil, nil, &DatasetError{Line: list.Line, Err: errors.New("want a list of cases, or a map with only the key cases")}
	}
	cases := make([]Case, 0, len(list.Content))
	lines := make([]int, 0, len(list.Content))
	for _, item := range list.Content {
		var v any
		if err := item.Decode(&v); err != nil {
			return nil, nil, &DatasetError{Line: item.Line, Err: yamlError(err)}
		}
		data, err := json.Marshal(jsonCompatible(v))
		if err != nil {
			return nil, nil, &DatasetError{Line: item.Line, Err: fmt.Errorf("not representable as JSON: %w", err)}
		}
		c, err := decodeCaseJSON(data)
		if err != nil {
			return nil, nil, &DatasetError{Line: item.Line, Err: err}
		}
		cases = append(cases, c)
		lines = append(lines, item.Line)
	}
	return cases, lines, nil
}

// yamlError drops the "yaml: " prefix of the library's errors.
func yamlError(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// jsonCompatible turns maps with keys of other types (YAML allows them)
// into maps with string keys, so that encoding/json takes them.
func jsonCompatible(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = jsonCompatible(x)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[fmt.Sprint(k)] = jsonCompatible(x)
		}
		return m
	case []any:
		for i, x := range v {
			v[i] = jsonCompatible(x)
		}
		return v
	}
	return v
}

// decodeCaseJSON decodes one case, refusing unknown fields and
// anything after it.
func decodeCaseJSON(data []byte) (Case, error) {
	var c Case
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var syntax *json.SyntaxError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			return Case{}, errors.New("malformed JSON: the case ends early")
		case errors.As(err, &syntax):
			return Case{}, fmt.Errorf("malformed JSON at byte %d: %v", syntax.Offset, err)
		}
		return Case{}, errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return Case{}, errors.New("more than one JSON value on the line")
	}
	return c, nil
}

// checkDatasetCase says what is wrong with a case read from a file.
func checkDatasetCase(c *Case, kinds func(string) bool) error {
	if strings.TrimSpace(c.Name) == "" {
		return errors.New("a case has no name")
	}
	if c.Message == "" && len(c.Turns) == 0 && c.Replay == nil {
		return fmt.Errorf("case %q: no input: give message, turns or replay", c.Name)
	}
	if c.Message != "" && len(c.Turns) > 0 {
		return fmt.Errorf("case %q: give message or turns, not both", c.Name)
	}
	if c.Trials < 0 {
		return fmt.Errorf("case %q: trials %d: negative", c.Name, c.Trials)
	}
	if c.Expect.Regex != "" {
		if _, err := regexp.Compile(c.Expect.Regex); err != nil {
			return fmt.Errorf("case %q: expect.regex: %w", c.Name, err)
		}
	}
	if tr := c.Expect.Trajectory; tr != nil {
		switch tr.Mode {
		case "", TrajectoryExact, TrajectoryInOrder, TrajectoryAnyOrder, TrajectorySubset:
		default:
			return fmt.Errorf("case %q: trajectory mode %q: want %s, %s, %s or %s", c.Name, tr.Mode,
				TrajectoryExact, TrajectoryInOrder, TrajectoryAnyOrder, TrajectorySubset)
		}
		for i, call := range tr.Calls {
			if call.Tool == "" {
				return fmt.Errorf("case %q: trajectory call %d has no tool", c.Name, i+1)
			}
		}
	}
	for i, g := range c.Grade {
		if g.Kind == "" {
			return fmt.Errorf("case %q: grader %d has no kind", c.Name, i+1)
		}
		if kinds != nil && !kinds(g.Kind) {
			return fmt.Errorf("case %q: grader %d: unknown kind %q", c.Name, i+1, g.Kind)
		}
		if g.Threshold < 0 || g.Threshold > 1 {
			return fmt.Errorf("case %q: grader %d (%s): threshold %g is not in [0,1]", c.Name, i+1, g.Kind, g.Threshold)
		}
	}
	for i, f := range c.Fixtures {
		if f.Tool == "" {
			return fmt.Errorf("case %q: fixture %d has no tool", c.Name, i+1)
		}
	}
	return nil
}
