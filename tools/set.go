package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Set is an ordered group of tools with distinct names, optionally named
// (a toolset such as "billing"). It lists tools in the order they were
// given, which is the order a model is shown them. A Set is immutable and
// safe for concurrent use.
type Set struct {
	name   string
	tools  []*Tool
	byName map[string]*Tool
}

// NewSet groups tools into an unnamed set. Two tools with the same name,
// or a nil tool, are an error.
func NewSet(tools ...*Tool) (*Set, error) {
	return newSet("", tools)
}

// NewNamedSet groups tools into a set with a name, which follows the rules
// of tool names.
func NewNamedSet(name string, tools ...*Tool) (*Set, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("tool set: %w", err)
	}
	return newSet(name, tools)
}

func newSet(name string, tools []*Tool) (*Set, error) {
	label := "tool set"
	if name != "" {
		label += " " + name
	}
	s := &Set{name: name, byName: make(map[string]*Tool, len(tools))}
	for i, t := range tools {
		if t == nil {
			return nil, fmt.Errorf("%s: tool %d is nil", label, i)
		}
		if _, dup := s.byName[t.name]; dup {
			return nil, fmt.Errorf("%s: duplicate tool name %q", label, t.name)
		}
		s.byName[t.name] = t
		s.tools = append(s.tools, t)
	}
	return s, nil
}

// Join puts the tools of several sets into one unnamed set, in order. A
// name found in two sets is an error.
func Join(sets ...*Set) (*Set, error) {
	var all []*Tool
	for _, s := range sets {
		if s != nil {
			all = append(all, s.tools...)
		}
	}
	return NewSet(all...)
}

// Name returns the set's name, empty for an unnamed set.
func (s *Set) Name() string { return s.name }

// Len returns the number of tools in the set.
func (s *Set) Len() int { return len(s.tools) }

// Lookup returns the tool of the given name.
func (s *Set) Lookup(name string) (*Tool, bool) {
	t, ok := s.byName[name]
	return t, ok
}

// List returns the tools in the order they were added. The caller may
// modify the returned slice.
func (s *Set) List() []*Tool { return append([]*Tool(nil), s.tools...) }

// Names returns the tools' names in the order they were added.
func (s *Set) Names() []string {
	names := make([]string, len(s.tools))
	for i, t := range s.tools {
		names[i] = t.name
	}
	return names
}

// Filter returns a set, of the same name, of the tools for which keep
// returns true, in the same order.
func (s *Set) Filter(keep func(*Tool) bool) *Set {
	f := &Set{name: s.name, byName: make(map[string]*Tool)}
	for _, t := range s.tools {
		if keep(t) {
			f.tools = append(f.tools, t)
			f.byName[t.name] = t
		}
	}
	return f
}

// Definitions describes the tools for a model provider, in order.
func (s *Set) Definitions() []Definition {
	defs := make([]Definition, len(s.tools))
	for i, t := range s.tools {
		defs[i] = t.Definition()
	}
	return defs
}

// Call calls the named tool as Tool.Call does. An unknown name gives a
// Result with IsError set that lists the tools the model may call.
func (s *Set) Call(ctx context.Context, name string, args json.RawMessage) (Result, error) {
	t, ok := s.byName[name]
	if !ok {
		msg := fmt.Sprintf("unknown tool %q; available tools: %s", name, strings.Join(s.Names(), ", "))
		if len(s.tools) == 0 {
			msg = fmt.Sprintf("unknown tool %q; no tools are available", name)
		}
		return Result{Content: strings.ToValidUTF8(msg, "\uFFFD"), IsError: true}, nil
	}
	return t.Call(ctx, args)
}
