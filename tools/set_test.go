package tools_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/tools"
)

func threeTools(t *testing.T) (a, b, c *tools.Tool) {
	return mustNew(t, "lookup_order", echo),
		mustNew(t, "refund", refund, tools.RequireApproval()),
		mustNew(t, "ship", echo, tools.HonorsIdempotencyKey())
}

func TestNewSet(t *testing.T) {
	a, b, c := threeTools(t)
	tests := []struct {
		name    string
		set     func() (*tools.Set, error)
		names   []string
		setName string
		err     string
	}{
		{name: "empty", set: func() (*tools.Set, error) { return tools.NewSet() }},
		{name: "insertion order", set: func() (*tools.Set, error) { return tools.NewSet(c, a, b) },
			names: []string{"ship", "lookup_order", "refund"}},
		{name: "duplicate", set: func() (*tools.Set, error) { return tools.NewSet(a, b, a) },
			err: `tool set: duplicate tool name "lookup_order"`},
		{name: "duplicate name, other tool", set: func() (*tools.Set, error) {
			return tools.NewSet(a, mustNew(t, "lookup_order", refund))
		}, err: "duplicate tool name"},
		{name: "nil tool", set: func() (*tools.Set, error) { return tools.NewSet(a, nil) }, err: "tool set: tool 1 is nil"},
		{name: "named", set: func() (*tools.Set, error) { return tools.NewNamedSet("billing", b) },
			names: []string{"refund"}, setName: "billing"},
		{name: "named with a duplicate", set: func() (*tools.Set, error) { return tools.NewNamedSet("billing", b, b) },
			err: `tool set billing: duplicate tool name "refund"`},
		{name: "bad set name", set: func() (*tools.Set, error) { return tools.NewNamedSet("bill ing", b) },
			err: "tool set: name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.set()
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			if len(tt.names) > 0 {
				assert.Equal(t, tt.names, s.Names(), "Names")
			} else {
				assert.Empty(t, s.Names(), "Names")
			}
			assert.Equal(t, len(tt.names), s.Len(), "Len")
			assert.Equal(t, tt.setName, s.Name(), "Name")
		})
	}
}

func TestSetLookupListFilter(t *testing.T) {
	a, b, c := threeTools(t)
	s, err := tools.NewNamedSet("support", a, b, c)
	require.NoError(t, err)
	lookups := []struct {
		name string
		want *tools.Tool
	}{{"refund", b}, {"ship", c}, {"Refund", nil}, {"", nil}}
	for _, l := range lookups {
		got, ok := s.Lookup(l.name)
		assert.Same(t, l.want, got, "Lookup(%q)", l.name)
		assert.Equal(t, l.want != nil, ok, "Lookup(%q) ok", l.name)
	}

	list := s.List()
	require.True(t, slices.Equal(list, []*tools.Tool{a, b, c}), "List = %v, want the tools themselves, in order", list)
	list[0] = nil
	require.Same(t, a, s.List()[0], "List returned the set's own slice")

	filters := []struct {
		name string
		keep func(*tools.Tool) bool
		want []string
	}{
		{"all", func(*tools.Tool) bool { return true }, []string{"lookup_order", "refund", "ship"}},
		{"none", func(*tools.Tool) bool { return false }, nil},
		{"no approval needed", func(t *tools.Tool) bool {
			need, _ := t.NeedsApproval(json.RawMessage(`{"order_id":"o","amount":1}`))
			return !need
		}, []string{"lookup_order", "ship"}},
		{"idempotent", (*tools.Tool).HonorsIdempotencyKey, []string{"ship"}},
	}
	for _, f := range filters {
		t.Run(f.name, func(t *testing.T) {
			got := s.Filter(f.keep)
			require.Equal(t, "support", got.Name(), "Filter keeps the set's name")
			require.Equal(t, len(f.want), got.Len(), "Filter's Len")
			if len(f.want) > 0 {
				require.Equal(t, f.want, got.Names(), "Filter's Names")
			}
			for _, n := range f.want {
				_, ok := got.Lookup(n)
				assert.True(t, ok, "filtered set cannot look up %s", n)
			}
			_, ok := got.Lookup("refund")
			assert.Equal(t, slices.Contains(f.want, "refund"), ok, "filtered set looks up refund, kept or dropped")
		})
	}
}

func TestSetDefinitions(t *testing.T) {
	a, b, _ := threeTools(t)
	s, err := tools.NewSet(b, a)
	require.NoError(t, err)
	defs := s.Definitions()
	require.Len(t, defs, 2)
	require.Equal(t, "refund", defs[0].Name)
	require.Equal(t, "lookup_order", defs[1].Name)
	raw, err := json.Marshal(defs[0])
	require.NoError(t, err)
	want := `{"name":"refund","description":"test tool refund","parameters":{"properties":{"order_id":{"type":"string"},"amount":{"type":"number","minimum":0}},"additionalProperties":false,"type":"object","required":["order_id","amount"]}}`
	assert.Equal(t, want, string(raw), "definition JSON")
}

func TestJoin(t *testing.T) {
	a, b, c := threeTools(t)
	s1, err := tools.NewNamedSet("orders", a, c)
	require.NoError(t, err)
	s2, err := tools.NewNamedSet("billing", b)
	require.NoError(t, err)
	tests := []struct {
		name  string
		sets  []*tools.Set
		names []string
		err   string
	}{
		{"two sets", []*tools.Set{s2, s1}, []string{"refund", "lookup_order", "ship"}, ""},
		{"with nil", []*tools.Set{nil, s1}, []string{"lookup_order", "ship"}, ""},
		{"overlap", []*tools.Set{s1, s2, s1}, nil, "duplicate tool name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := tools.Join(tt.sets...)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err, "Join")
				return
			}
			require.NoError(t, err, "Join")
			assert.Equal(t, tt.names, j.Names(), "Join's Names")
			assert.Empty(t, j.Name(), "Join's Name")
		})
	}
}

func TestSetCall(t *testing.T) {
	a, b, _ := threeTools(t)
	s, err := tools.NewSet(a, b)
	require.NoError(t, err)
	empty, err := tools.NewSet()
	require.NoError(t, err)
	tests := []struct {
		name    string
		set     *tools.Set
		tool    string
		args    string
		content string
		isError bool
	}{
		{"known", s, "refund", `{"order_id":"o-9","amount":5}`, `"refunded o-9"`, false},
		{"known, bad arguments", s, "refund", `{"order_id":"o-9"}`, "invalid arguments for tool \"refund\":\n- at (root): missing property 'amount'\nFix the arguments and call the tool again.", true},
		{"unknown", s, "refnud", `{}`, `unknown tool "refnud"; available tools: lookup_order, refund`, true},
		{"unknown, invalid UTF-8 name", s, "re\xfffund", `{}`, "unknown tool \"re\\xfffund\"; available tools: lookup_order, refund", true},
		{"no tools", empty, "refund", `{}`, `unknown tool "refund"; no tools are available`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.set.Call(context.Background(), tt.tool, json.RawMessage(tt.args))
			require.NoError(t, err)
			assert.Equal(t, tt.content, r.Content, "Call's Content")
			assert.Equal(t, tt.isError, r.IsError, "Call's IsError")
		})
	}
}
