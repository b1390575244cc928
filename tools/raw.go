package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	validator "github.com/santhosh-tekuri/jsonschema/v6"
)

// RawFunc is the function of a tool made with NewRaw. It gets the
// arguments as the model sent them, once they have passed the tool's
// schema, and returns the Result the model reads: Content is taken as it
// is (not encoded to JSON again), made valid UTF-8 and truncated at
// MaxResultBytes by Call; IsError tells the model that the call failed.
// Errors mean what they mean for New: Fatal stops the run, Retryable is a
// failed attempt, any other error is shown to the model.
type RawFunc func(ctx context.Context, args json.RawMessage) (Result, error)

// NewRaw makes a tool whose arguments are described by a JSON Schema given
// as bytes rather than by a Go type: a tool from another system (an MCP
// server) or one built at run time. Everything else is as for New: the
// name's rules, the options, the validation of the model's arguments
// (Call checks them against schema and never gives fn bad ones; no
// defaults are filled in), and what Call does with fn's result and errors.
//
// schema must be a JSON object whose "type" is "object". Its "$schema", if
// any, picks the draft it is checked by (2020-12 by default); "$schema" and
// "$id" are left out of what the model is shown (Schema, Definition). A
// schema that cannot be compiled is an error.
//
// RequireApprovalIf takes a func(json.RawMessage) bool for a raw tool: it
// gets the validated arguments.
func NewRaw(name, description string, schema json.RawMessage, fn RawFunc, opts ...Option) (*Tool, error) {
	st, err := newSettings(name, fn == nil, opts)
	if err != nil {
		return nil, err
	}
	s, err := newRawSchema(schema)
	if err != nil {
		return nil, fmt.Errorf("tool %s: %w", name, err)
	}
	t := &Tool{name: name, description: description, schema: s, settings: st}
	decode := func(args []byte) (json.RawMessage, error) {
		var in json.RawMessage
		err := s.decode(name, args, &in)
		return in, err
	}
	t.prepare = func(args []byte) (func(context.Context) (Result, error), error) {
		in, err := decode(args)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (Result, error) { return fn(ctx, in) }, nil
	}
	if st.policy != nil {
		p, ok := st.policy.(func(json.RawMessage) bool)
		if !ok {
			return nil, fmt.Errorf("tool %s: approval policy %T of a raw tool must be a func(json.RawMessage) bool", name, st.policy)
		}
		t.policy = checkedPolicy(name, decode, p)
	}
	return t, nil
}

// newRawSchema compiles a schema given as JSON. The schema shown to the
// model is the given one without $schema and $id.
func newRawSchema(raw json.RawMessage) (s *argSchema, err error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return nil, fmt.Errorf("schema: want a JSON object")
	}
	var typ any
	if err := json.Unmarshal(top["type"], &typ); err != nil || typ != "object" {
		return nil, fmt.Errorf("schema: type %s, want \"object\"", bytes.TrimSpace(top["type"]))
	}
	doc, err := validator.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("decode schema: %w", err)
	}
	compiled, err := compileSchema(doc)
	if err != nil {
		// A $schema this validator does not know: check by the
		// default draft rather than refuse the tool.
		m, _ := doc.(map[string]any)
		if _, ok := m["$schema"]; !ok {
			return nil, err
		}
		delete(m, "$schema")
		if compiled, err = compileSchema(m); err != nil {
			return nil, err
		}
	}
	delete(top, "$schema")
	delete(top, "$id")
	shown, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	return &argSchema{raw: shown, compiled: compiled}, nil
}

// compileSchema compiles a decoded schema as argument schemas are: draft
// 2020-12 unless it says otherwise, formats asserted. A panic in the
// compiler is an error: a schema from another system must never crash.
func compileSchema(doc any) (sch *validator.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			sch, err = nil, fmt.Errorf("compile schema: %v", r)
		}
	}()
	c := validator.NewCompiler()
	c.DefaultDraft(validator.Draft2020)
	c.AssertFormat()
	const url = "https://cairn.invalid/tool-arguments.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("add schema: %w", err)
	}
	compiled, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile schema: %w", err)
	}
	return compiled, nil
}
