package tools_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

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
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Names(), tt.names) && len(tt.names)+s.Len() > 0 {
				t.Errorf("Names = %v, want %v", s.Names(), tt.names)
			}
			if s.Len() != len(tt.names) || s.Name() != tt.setName {
				t.Errorf("Len %d, Name %q", s.Len(), s.Name())
			}
		})
	}
}

func TestSetLookupListFilter(t *testing.T) {
	a, b, c := threeTools(t)
	s, err := tools.NewNamedSet("support", a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	lookups := []struct {
		name string
		want *tools.Tool
	}{{"refund", b}, {"ship", c}, {"Refund", nil}, {"", nil}}
	for _, l := range lookups {
		got, ok := s.Lookup(l.name)
		if got != l.want || ok != (l.want != nil) {
			t.Errorf("Lookup(%q) = %v, %v", l.name, got, ok)
		}
	}

	list := s.List()
	if !slices.Equal(list, []*tools.Tool{a, b, c}) {
		t.Fatalf("List = %v", list)
	}
	list[0] = nil
	if s.List()[0] != a {
		t.Fatal("List returned the set's own slice")
	}

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
			if got.Name() != "support" || got.Len() != len(f.want) || (len(f.want) > 0 && !slices.Equal(got.Names(), f.want)) {
				t.Fatalf("Filter = %q %v, want %v", got.Name(), got.Names(), f.want)
			}
			for _, n := range f.want {
				if _, ok := got.Lookup(n); !ok {
					t.Errorf("filtered set cannot look up %s", n)
				}
			}
			if _, ok := got.Lookup("refund"); ok != slices.Contains(f.want, "refund") {
				t.Errorf("filtered set looks up a tool it dropped")
			}
		})
	}
}

func TestSetDefinitions(t *testing.T) {
	a, b, _ := threeTools(t)
	s, _ := tools.NewSet(b, a)
	defs := s.Definitions()
	if len(defs) != 2 || defs[0].Name != "refund" || defs[1].Name != "lookup_order" {
		t.Fatalf("Definitions = %+v", defs)
	}
	raw, err := json.Marshal(defs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"refund","description":"test tool refund","parameters":{"properties":{"order_id":{"type":"string"},"amount":{"type":"number","minimum":0}},"additionalProperties":false,"type":"object","required":["order_id","amount"]}}`
	if string(raw) != want {
		t.Fatalf("definition JSON\n%s\nwant\n%s", raw, want)
	}
}

func TestJoin(t *testing.T) {
	a, b, c := threeTools(t)
	s1, _ := tools.NewNamedSet("orders", a, c)
	s2, _ := tools.NewNamedSet("billing", b)
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
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Join error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(j.Names(), tt.names) || j.Name() != "" {
				t.Fatalf("Join = %v %q, %v", j.Names(), j.Name(), err)
			}
		})
	}
}

func TestSetCall(t *testing.T) {
	a, b, _ := threeTools(t)
	s, _ := tools.NewSet(a, b)
	empty, _ := tools.NewSet()
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
			if err != nil {
				t.Fatal(err)
			}
			if r.Content != tt.content || r.IsError != tt.isError {
				t.Fatalf("Call = %+v\nwant %q, IsError %v", r, tt.content, tt.isError)
			}
		})
	}
}
