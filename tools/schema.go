package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	invopop "github.com/invopop/jsonschema"
	validator "github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// maxIssues caps the issues reported for one call, so that a wildly wrong
// call does not flood the model.
const maxIssues = 20

// argSchema is the JSON Schema of a tool's arguments: as the model sees
// it, as reflected (for defaults; nil for a raw tool's), and compiled (for
// validation). It is
// read-only after newArgSchema and safe for concurrent use.
type argSchema struct {
	raw       json.RawMessage
	reflected *invopop.Schema
	compiled  *validator.Schema
}

// newArgSchema reflects the schema of t, which must encode as a JSON
// object (a struct, a pointer to one, or a map with string keys). The
// schema is inline, without $ref or $defs, unless t is recursive.
func newArgSchema(t reflect.Type) (*argSchema, error) {
	base := t
	for base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if base.Kind() != reflect.Struct && (base.Kind() != reflect.Map || base.Key().Kind() != reflect.String) {
		return nil, fmt.Errorf("argument type %v: want a struct or a map with string keys", t)
	}
	var s *invopop.Schema
	if !recursive(base, map[reflect.Type]bool{}) {
		r := &invopop.Reflector{Anonymous: true, ExpandedStruct: true, DoNotReference: true}
		s = r.ReflectFromType(t)
	} else {
		// The root must be an object schema, not a $ref, and its own
		// definition must stay in $defs for the references to it.
		r := &invopop.Reflector{Anonymous: true}
		ref := r.ReflectFromType(t)
		def := ref.Definitions[strings.TrimPrefix(ref.Ref, "#/$defs/")]
		if def == nil {
			return nil, fmt.Errorf("argument type %v: no definition for %q", t, ref.Ref)
		}
		root := *def
		root.Definitions = ref.Definitions
		s = &root
	}
	s.Version = ""
	if s.Type != "object" {
		return nil, fmt.Errorf("argument type %v: schema type %q, want a JSON object", t, s.Type)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	doc, err := validator.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("decode schema: %w", err)
	}
	compiled, err := compileSchema(doc)
	if err != nil {
		return nil, err
	}
	return &argSchema{raw: raw, reflected: s, compiled: compiled}, nil
}

// recursive reports whether t refers to itself, which needs $defs and $ref
// in its schema.
func recursive(t reflect.Type, onPath map[reflect.Type]bool) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return recursive(t.Elem(), onPath)
	case reflect.Struct:
		if onPath[t] {
			return true
		}
		onPath[t] = true
		defer delete(onPath, t)
		for f := range t.Fields() {
			if (f.IsExported() || f.Anonymous) && recursive(f.Type, onPath) {
				return true
			}
		}
	}
	return false
}

// decode checks args against the schema and decodes them into dst. Empty
// arguments, or only JSON whitespace, stand for {}. Missing properties that have a default
// in the schema take it. The error is an *ArgumentError.
func (s *argSchema) decode(tool string, args []byte, dst any) error {
	if len(bytes.Trim(args, " \t\r\n")) == 0 {
		args = []byte("{}")
	}
	fail := func(issues ...Issue) error { return &ArgumentError{Tool: tool, Issues: issues} }
	if !utf8.Valid(args) {
		off := 0
		for off < len(args) {
			r, n := utf8.DecodeRune(args[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return fail(Issue{Message: fmt.Sprintf("arguments are not valid UTF-8 (invalid byte at offset %d)", off)})
	}
	doc, err := validator.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return fail(Issue{Message: "arguments are not valid JSON: " + jsonSyntaxMessage(err)})
	}
	if issues := checkNumbers(doc, nil, nil); len(issues) > 0 {
		return fail(tidyIssues(issues)...)
	}
	if err := validate(s.compiled, doc); err != nil {
		var ve *validator.ValidationError
		if !errors.As(err, &ve) {
			return fail(Issue{Message: err.Error()})
		}
		return fail(validationIssues(ve)...)
	}
	if applyDefaults(s.reflected, doc) {
		if args, err = json.Marshal(doc); err != nil {
			return fail(Issue{Message: "apply defaults: " + err.Error()})
		}
	}
	if err := json.Unmarshal(args, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fail(Issue{Path: fieldPointer(te.Field), Message: fmt.Sprintf("cannot use %s as %v", te.Value, te.Type)})
		}
		return fail(Issue{Message: err.Error()})
	}
	return nil
}

// validate runs the validator, turning a panic in it into an error: bad
// arguments must never crash the caller.
func validate(sch *validator.Schema, doc any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("arguments could not be validated: %v", r)
		}
	}()
	return sch.Validate(doc)
}

// maxExponent bounds the exponent of a number in arguments. Go's numbers
// stop near 1e±308; exponents in the millions make the validator's
// exact arithmetic (math/big) slow or fail.
const maxExponent = 1000

// checkNumbers reports the numbers in v that no Go number can hold, or
// whose exponent is out of bounds.
func checkNumbers(v any, path []string, issues []Issue) []Issue {
	switch v := v.(type) {
	case json.Number:
		if !numberInRange(string(v)) {
			issues = append(issues, Issue{Path: pointer(path), Message: fmt.Sprintf("number %.40s is out of range", v)})
		}
	case map[string]any:
		for k, e := range v {
			issues = checkNumbers(e, append(path, k), issues)
		}
	case []any:
		for i, e := range v {
			issues = checkNumbers(e, append(path, strconv.Itoa(i)), issues)
		}
	}
	return issues
}

func numberInRange(n string) bool {
	if i := strings.IndexAny(n, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(n[i+1:], "+"))
		if err != nil || exp > maxExponent || exp < -maxExponent {
			return false
		}
	}
	_, err := strconv.ParseFloat(n, 64)
	return err == nil
}

func jsonSyntaxMessage(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte offset %d)", se, se.Offset)
	}
	if err.Error() == "EOF" || err.Error() == "unexpected EOF" {
		return "unexpected end of input"
	}
	return err.Error()
}

// validationIssues flattens a validation error tree into its leaves.
func validationIssues(ve *validator.ValidationError) []Issue {
	p := message.NewPrinter(language.English)
	var issues []Issue
	var walk func(e *validator.ValidationError)
	walk = func(e *validator.ValidationError) {
		if len(e.Causes) == 0 {
			issues = append(issues, Issue{Path: pointer(e.InstanceLocation), Message: e.ErrorKind.LocalizedString(p)})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return tidyIssues(issues)
}

// tidyIssues sorts issues, so that the same arguments always give the
// same message, drops repeats and caps their number.
func tidyIssues(issues []Issue) []Issue {
	slices.SortFunc(issues, func(a, b Issue) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	issues = slices.Compact(issues)
	if n := len(issues); n > maxIssues {
		issues = append(issues[:maxIssues], Issue{Message: fmt.Sprintf("and %d more issues", n-maxIssues)})
	}
	return issues
}

// pointer renders a JSON Pointer (RFC 6901).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}

// fieldPointer turns encoding/json's dotted field path into a pointer.
func fieldPointer(field string) string {
	if field == "" {
		return ""
	}
	return pointer(strings.Split(field, "."))
}

// applyDefaults sets each property missing from an object in v to its
// default in s, descending into the nested objects and arrays that are
// present (not through $ref). It reports whether it changed anything.
func applyDefaults(s *invopop.Schema, v any) bool {
	if s == nil {
		return false
	}
	if arr, ok := v.([]any); ok {
		changed := false
		for _, e := range arr {
			changed = applyDefaults(s.Items, e) || changed
		}
		return changed
	}
	obj, ok := v.(map[string]any)
	if !ok || s.Properties == nil {
		return false
	}
	changed := false
	for name, prop := range s.Properties.FromOldest() {
		if prop == nil {
			continue
		}
		if cur, ok := obj[name]; ok {
			changed = applyDefaults(prop, cur) || changed
		} else if prop.Default != nil {
			obj[name] = prop.Default
			changed = true
		}
	}
	return changed
}
