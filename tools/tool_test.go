package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/tools"
)

type lineItem struct {
	SKU string `json:"sku" jsonschema:"description=Stock keeping unit"`
	Qty int    `json:"qty,omitempty" jsonschema:"minimum=1,default=1"`
}

type orderArgs struct {
	OrderID string     `json:"order_id" jsonschema:"description=The order to act on,pattern=^o-[0-9]+$"`
	Speed   string     `json:"speed,omitempty" jsonschema:"enum=standard,enum=express,default=standard"`
	Items   []lineItem `json:"items" jsonschema:"minItems=1"`
	Note    string     `json:"note,omitempty"`
	At      time.Time  `json:"at,omitzero"`
	Gift    *lineItem  `json:"gift,omitempty"`
	Tip     float64    `json:"tip,omitempty" jsonschema:"minimum=0,maximum=100"`
}

// recorder is a tool function that records the arguments it got.
type recorder struct {
	mu    sync.Mutex
	calls []orderArgs
}

func (r *recorder) fn(_ context.Context, in orderArgs) (orderArgs, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, in)
	return in, nil
}

func mustNew[In, Out any](t testing.TB, name string, fn func(context.Context, In) (Out, error), opts ...tools.Option) *tools.Tool {
	t.Helper()
	tool, err := tools.New(name, "test tool "+name, fn, opts...)
	require.NoError(t, err)
	return tool
}

func echo(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil }

func TestNewNames(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"get_weather-v2", true},
		{"ABC123", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"has space", false},
		{"dot.ted", false},
		{"ünicode", false},
		{"semi;colon", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tools.New(tt.name, "", echo)
			if tt.ok {
				assert.NoError(t, err, "New(%q)", tt.name)
				return
			}
			require.Error(t, err, "New(%q)", tt.name)
			assert.True(t, strings.HasPrefix(err.Error(), "tool: name "), "error %q lacks context", err)
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		new  func() (*tools.Tool, error)
		want string
	}{
		{"nil function", func() (*tools.Tool, error) {
			return tools.New[orderArgs, string]("t", "", nil)
		}, "nil function"},
		{"string arguments", func() (*tools.Tool, error) {
			return tools.New("t", "", func(context.Context, string) (string, error) { return "", nil })
		}, "want a struct or a map"},
		{"slice arguments", func() (*tools.Tool, error) {
			return tools.New("t", "", func(context.Context, []int) (string, error) { return "", nil })
		}, "want a struct or a map"},
		{"map with int keys", func() (*tools.Tool, error) {
			return tools.New("t", "", func(context.Context, map[int]string) (string, error) { return "", nil })
		}, "want a struct or a map"},
		{"time arguments", func() (*tools.Tool, error) {
			return tools.New("t", "", func(context.Context, time.Time) (string, error) { return "", nil })
		}, "want a JSON object"},
		{"zero timeout", func() (*tools.Tool, error) {
			return tools.New("t", "", echo, tools.Timeout(0))
		}, "must be positive"},
		{"zero result limit", func() (*tools.Tool, error) {
			return tools.New("t", "", echo, tools.MaxResultBytes(0))
		}, "must be positive"},
		{"nil policy", func() (*tools.Tool, error) {
			return tools.New("t", "", echo, tools.RequireApprovalIf[map[string]any](nil))
		}, "nil approval policy"},
		{"policy of another type", func() (*tools.Tool, error) {
			return tools.New("t", "", echo, tools.RequireApprovalIf(func(orderArgs) bool { return true }))
		}, "does not take the tool's arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tool, err := tt.new()
			require.ErrorContains(t, err, tt.want, "got tool %v", tool)
			assert.True(t, strings.HasPrefix(err.Error(), "tool t: "), "error %q lacks the tool's name as context", err)
		})
	}
}

func TestMustNewPanics(t *testing.T) {
	assert.Panics(t, func() { tools.MustNew("bad name", "", echo) }, "MustNew with a bad name did not panic")
}

func TestSchema(t *testing.T) {
	tool := mustNew(t, "order", (&recorder{}).fn)
	raw := string(tool.Schema())
	for _, want := range []string{
		`"description":"The order to act on"`,
		`"enum":["standard","express"]`,
		`"default":"standard"`,
		`"required":["order_id","items"]`,
		`"additionalProperties":false`,
		`"format":"date-time"`,
		`"minItems":1`,
	} {
		assert.Contains(t, raw, want, "schema")
	}
	for _, bad := range []string{`$ref`, `$defs`, `$schema`, `$id`} {
		assert.NotContains(t, raw, bad, "schema")
	}
	var top struct {
		Type string `json:"type"`
	}
	assert.NoError(t, json.Unmarshal(tool.Schema(), &top))
	assert.Equal(t, "object", top.Type, "schema type")
	s := tool.Schema()
	s[0] = 'X'
	assert.NotEqual(t, byte('X'), tool.Schema()[0], "Schema returned the tool's own bytes")
}

type treeNode struct {
	Name     string      `json:"name"`
	Children []*treeNode `json:"children,omitempty"`
}

func TestSchemaRecursive(t *testing.T) {
	tool := mustNew(t, "tree", func(_ context.Context, n treeNode) (int, error) { return len(n.Children), nil })
	var top struct {
		Type string                     `json:"type"`
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(tool.Schema(), &top))
	require.Equal(t, "object", top.Type, "recursive schema:\n%s", tool.Schema())
	require.Contains(t, top.Defs, "treeNode", "recursive schema:\n%s", tool.Schema())
	r, err := tool.Call(context.Background(), []byte(`{"name":"a","children":[{"name":"b"},{"children":[]}]}`))
	require.NoError(t, err)
	assert.True(t, r.IsError, "Call = %+v", r)
	assert.Contains(t, r.Content, "at /children/1: missing property 'name'")
	r, err = tool.Call(context.Background(), []byte(`{"name":"a","children":[{"name":"b"},{"name":"c"}]}`))
	require.NoError(t, err)
	assert.False(t, r.IsError, "Call = %+v", r)
	assert.Equal(t, "2", r.Content)
}

func TestCallArguments(t *testing.T) {
	tests := []struct {
		name string
		args string
		want string // substring of Content when IsError; JSON of the decoded arguments otherwise
		bad  bool
	}{
		{name: "valid", args: `{"order_id":"o-1","items":[{"sku":"a","qty":2}]}`,
			want: `{"order_id":"o-1","speed":"standard","items":[{"sku":"a","qty":2}]}`},
		{name: "defaults, nested too", args: `{"order_id":"o-1","items":[{"sku":"a"}],"gift":{"sku":"g"}}`,
			want: `{"order_id":"o-1","speed":"standard","items":[{"sku":"a","qty":1}],"gift":{"sku":"g","qty":1}}`},
		{name: "explicit values win over defaults", args: ` {"order_id":"o-1","speed":"express","items":[{"sku":"a","qty":3}]} `,
			want: `{"order_id":"o-1","speed":"express","items":[{"sku":"a","qty":3}]}`},
		{name: "empty arguments are {}", args: "", bad: true, want: "at (root): missing properties 'order_id', 'items'"},
		{name: "malformed JSON", args: `{"order_id": "o-1",`, bad: true, want: "at (root): arguments are not valid JSON: unexpected end of input"},
		{name: "syntax error offset", args: `{"order_id": o-1}`, bad: true, want: "invalid character 'o' looking for beginning of value (at byte offset 14)"},
		{name: "only JSON whitespace is whitespace", args: "\v{}", bad: true, want: "not valid JSON: invalid character '\\v'"},
		{name: "trailing data", args: `{} {}`, bad: true, want: "not valid JSON"},
		{name: "invalid UTF-8", args: "{\"order_id\":\"o-\xff\"}", bad: true, want: "not valid UTF-8 (invalid byte at offset 15)"},
		{name: "null", args: `null`, bad: true, want: "at (root): got null, want object"},
		{name: "array", args: `[1,2]`, bad: true, want: "at (root): got array, want object"},
		{name: "wrong type", args: `{"order_id":7,"items":[{"sku":"a"}]}`, bad: true, want: "at /order_id: got number, want string"},
		{name: "missing required", args: `{"items":[{"sku":"a"}]}`, bad: true, want: "at (root): missing property 'order_id'"},
		{name: "unknown property", args: `{"order_id":"o-1","items":[{"sku":"a"}],"refund":true}`, bad: true, want: "additional properties 'refund' not allowed"},
		{name: "enum", args: `{"order_id":"o-1","items":[{"sku":"a"}],"speed":"warp"}`, bad: true, want: "at /speed: value must be one of 'standard', 'express'"},
		{name: "pattern", args: `{"order_id":"x","items":[{"sku":"a"}]}`, bad: true, want: "at /order_id: 'x' does not match pattern"},
		{name: "nested", args: `{"order_id":"o-1","items":[{"sku":"a"},{"qty":0}]}`, bad: true, want: "- at /items/1: missing property 'sku'\n- at /items/1/qty: minimum: got 0, want 1"},
		{name: "minItems", args: `{"order_id":"o-1","items":[]}`, bad: true, want: "at /items: minItems: got 0, want 1"},
		{name: "format", args: `{"order_id":"o-1","items":[{"sku":"a"}],"at":"yesterday"}`, bad: true, want: "at /at: 'yesterday' is not valid date-time"},
		{name: "integer overflow", args: `{"order_id":"o-1","items":[{"sku":"a","qty":1e40}]}`, bad: true, want: "cannot use number 1e40 as int"},
		{name: "number too big", args: `{"order_id":"o-1","items":[{"sku":"a"}],"tip":1e1000000000}`, bad: true, want: "at /tip: number 1e1000000000 is out of range"},
		{name: "exponent too small", args: `{"order_id":"o-1","items":[{"sku":"a"}],"tip":1e-9999999}`, bad: true, want: "at /tip: number 1e-9999999 is out of range"},
		{name: "number too big, no exponent", args: `{"order_id":"o-1","items":[{"sku":"a"}],"note":"x","tip":1` + strings.Repeat("0", 400) + `}`, bad: true, want: "is out of range"},
		{name: "number past maximum", args: `{"order_id":"o-1","items":[{"sku":"a"}],"tip":1e300}`, bad: true, want: "at /tip: maximum: got 1"},
		{name: "tiny number", args: `{"order_id":"o-1","items":[{"sku":"a"}],"tip":1e-400}`,
			want: `{"order_id":"o-1","speed":"standard","items":[{"sku":"a","qty":1}]}`},
		{name: "deep nesting", args: strings.Repeat("[", 20000) + strings.Repeat("]", 20000), bad: true, want: "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			tool := mustNew(t, "order", rec.fn)
			r, err := tool.Call(context.Background(), json.RawMessage(tt.args))
			require.NoError(t, err, "Call")
			require.Equal(t, tt.bad, r.IsError, "IsError; content:\n%s", r.Content)
			if tt.bad {
				assert.Empty(t, rec.calls, "bad arguments reached the tool")
				assert.True(t, strings.HasPrefix(r.Content, `invalid arguments for tool "order":`), "content:\n%s", r.Content)
				assert.Contains(t, r.Content, tt.want)
				assert.EqualError(t, tool.Validate(json.RawMessage(tt.args)), r.Content, "Validate, the same message as Call")
				return
			}
			assert.Equal(t, tt.want, r.Content)
			assert.NoError(t, tool.Validate(json.RawMessage(tt.args)), "Validate")
		})
	}
}

func TestArgumentErrorIssues(t *testing.T) {
	tool := mustNew(t, "order", (&recorder{}).fn)
	err := tool.Validate([]byte(`{"order_id":1,"items":[{"sku":"a","qty":0,"x":1}],"extra":2}`))
	var ae *tools.ArgumentError
	require.ErrorAs(t, err, &ae, "Validate")
	want := []tools.Issue{
		{Path: "", Message: "additional properties 'extra' not allowed"},
		{Path: "/items/0", Message: "additional properties 'x' not allowed"},
		{Path: "/items/0/qty", Message: "minimum: got 0, want 1"},
		{Path: "/order_id", Message: "got number, want string"},
	}
	assert.Equal(t, "order", ae.Tool)
	assert.Equal(t, want, ae.Issues)
}

func TestArgumentErrorCapsIssues(t *testing.T) {
	tool := mustNew(t, "order", (&recorder{}).fn)
	var b strings.Builder
	b.WriteString(`{"order_id":"o-1","items":[`)
	for i := range 50 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"qty":0}`)
	}
	b.WriteString(`]}`)
	var ae *tools.ArgumentError
	require.ErrorAs(t, tool.Validate([]byte(b.String())), &ae)
	require.Len(t, ae.Issues, 21)
	assert.True(t, strings.HasPrefix(ae.Issues[20].Message, "and 80 more issues"), "last issue %+v", ae.Issues[20])
}

type payload struct {
	Text string  `json:"text"`
	F    float64 `json:"f,omitempty"`
}

func TestCallOutcomes(t *testing.T) {
	inner := errors.New("card declined")
	tests := []struct {
		name    string
		fn      func(context.Context, map[string]any) (payload, error)
		opts    []tools.Option
		ctx     func() (context.Context, context.CancelFunc)
		content string // Content, for a nil error
		isError bool
		err     func(error) bool // checks the error, nil if none is wanted
	}{
		{name: "result as JSON", fn: func(context.Context, map[string]any) (payload, error) {
			return payload{Text: "ok"}, nil
		}, content: `{"text":"ok"}`},
		{name: "tool error for the model", fn: func(context.Context, map[string]any) (payload, error) {
			return payload{}, inner
		}, content: "tool t failed: card declined", isError: true},
		{name: "tool error with invalid UTF-8", fn: func(context.Context, map[string]any) (payload, error) {
			return payload{}, errors.New("bad \xff byte")
		}, content: "tool t failed: bad \uFFFD byte", isError: true},
		{name: "unencodable result", fn: func(context.Context, map[string]any) (payload, error) {
			return payload{F: math.NaN()}, nil
		}, content: "tool t returned a result that cannot be encoded as JSON: json: unsupported value: NaN", isError: true},
		{name: "fatal", fn: func(context.Context, map[string]any) (payload, error) {
			return payload{}, fmtWrap(tools.Fatal(inner))
		}, err: func(err error) bool { return tools.IsFatal(err) && errors.Is(err, inner) }},
		{name: "retryable", fn: func(context.Context, map[string]any) (payload, error) {
			return payload{}, tools.Retryable(inner)
		}, err: func(err error) bool { return !tools.IsFatal(err) && errors.Is(err, inner) }},
		{name: "panic", fn: func(context.Context, map[string]any) (payload, error) {
			panic("boom")
		}, err: func(err error) bool {
			var pe *tools.PanicError
			return errors.Is(err, tools.ErrPanic) && errors.As(err, &pe) && pe.Value == "boom" &&
				strings.Contains(pe.Stack, "tool_test.go") && !tools.IsFatal(err)
		}},
		{name: "goexit", fn: func(context.Context, map[string]any) (payload, error) {
			runtime.Goexit()
			return payload{}, nil
		}, err: func(err error) bool { return errors.Is(err, tools.ErrPanic) }},
		{name: "timeout", opts: []tools.Option{tools.Timeout(20 * time.Millisecond)},
			fn: func(ctx context.Context, _ map[string]any) (payload, error) {
				<-ctx.Done()
				return payload{}, ctx.Err()
			}, err: func(err error) bool { return errors.Is(err, tools.ErrTimeout) }},
		{name: "timeout of a tool ignoring its context", opts: []tools.Option{tools.Timeout(20 * time.Millisecond)},
			fn: func(context.Context, map[string]any) (payload, error) {
				time.Sleep(2 * time.Second)
				return payload{}, nil
			}, err: func(err error) bool { return errors.Is(err, tools.ErrTimeout) }},
		{name: "fast enough", opts: []tools.Option{tools.Timeout(time.Minute)},
			fn: func(context.Context, map[string]any) (payload, error) {
				return payload{Text: "quick"}, nil
			}, content: `{"text":"quick"}`},
		{name: "canceled by the caller", ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(10*time.Millisecond, cancel)
			return ctx, cancel
		}, fn: func(ctx context.Context, _ map[string]any) (payload, error) {
			<-ctx.Done()
			return payload{}, errors.New("gave up")
		}, err: func(err error) bool { return errors.Is(err, context.Canceled) && !errors.Is(err, tools.ErrTimeout) }},
		{name: "canceled before the call", ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, fn: func(context.Context, map[string]any) (payload, error) {
			panic("must not run")
		}, err: func(err error) bool { return errors.Is(err, context.Canceled) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tool := mustNew(t, "t", tt.fn, tt.opts...)
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			start := time.Now()
			r, err := tool.Call(ctx, []byte(`{}`))
			assert.LessOrEqual(t, time.Since(start), time.Second, "time Call took")
			if tt.err != nil {
				require.Error(t, err, "Call = %+v", r)
				require.True(t, tt.err(err), "Call = %+v, %v (%T); want another error", r, err, err)
				assert.Zero(t, r, "result with an error")
				assert.True(t, strings.HasPrefix(err.Error(), "tool t: "), "error %q lacks context", err)
				return
			}
			require.NoError(t, err, "Call")
			assert.Equal(t, tt.content, r.Content, "Call's Content")
			assert.Equal(t, tt.isError, r.IsError, "Call's IsError")
		})
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("charging"), err) }

func TestFatalAndRetryableOfNil(t *testing.T) {
	assert.NoError(t, tools.Fatal(nil), "nil errors must stay nil")
	assert.NoError(t, tools.Retryable(nil), "nil errors must stay nil")
	assert.False(t, tools.IsFatal(nil), "nil errors must stay nil")
	var fe *tools.FatalError
	err := tools.Fatal(errors.New("x"))
	assert.ErrorAs(t, err, &fe)
	assert.EqualError(t, err, "fatal: x")
}

func TestTruncation(t *testing.T) {
	tests := []struct {
		name      string
		out       string
		fail      bool
		limit     int
		content   string
		truncated bool
	}{
		{name: "under the limit", out: "abc", limit: 10, content: `"abc"`},
		{name: "at the limit", out: "abcdefgh", limit: 10, content: `"abcdefgh"`},
		{name: "over the limit", out: "abcdefghi", limit: 10, truncated: true,
			content: "\"abcdefghi\n[truncated: the result was 11 bytes; only the first 10 are shown]"},
		{name: "cut on a rune boundary", out: "ab€€", limit: 6, truncated: true,
			content: "\"ab€\n[truncated: the result was 10 bytes; only the first 6 are shown]"},
		{name: "errors too", out: "0123456789", fail: true, limit: 16, truncated: true,
			content: "tool t failed: 0\n[truncated: the result was 25 bytes; only the first 16 are shown]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tool := mustNew(t, "t", func(context.Context, struct{}) (string, error) {
				if tt.fail {
					return "", errors.New(tt.out)
				}
				return tt.out, nil
			}, tools.MaxResultBytes(tt.limit))
			r, err := tool.Call(context.Background(), nil)
			require.NoError(t, err)
			assert.Equal(t, tt.content, r.Content, "Call's Content")
			assert.Equal(t, tt.truncated, r.Truncated, "Call's Truncated")
			assert.Equal(t, tt.fail, r.IsError, "Call's IsError")
		})
	}
}

func TestTruncationDefault(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	tool := mustNew(t, "t", func(context.Context, struct{}) (string, error) { return big, nil })
	require.Equal(t, 64<<10, tools.DefaultMaxResultBytes)
	require.Equal(t, tools.DefaultMaxResultBytes, tool.MaxResultBytes(), "default limit")
	r, err := tool.Call(context.Background(), nil)
	require.NoError(t, err)
	assert.True(t, r.Truncated, "Truncated")
	assert.LessOrEqual(t, len(r.Content), tools.DefaultMaxResultBytes+100, "bytes of content")
	assert.Contains(t, r.Content, "only the first 65536 are shown")
}

type refundArgs struct {
	OrderID string  `json:"order_id"`
	Amount  float64 `json:"amount" jsonschema:"minimum=0"`
}

func refund(_ context.Context, in refundArgs) (string, error) { return "refunded " + in.OrderID, nil }

func TestNeedsApproval(t *testing.T) {
	over100 := tools.RequireApprovalIf(func(in refundArgs) bool { return in.Amount > 100 })
	panics := tools.RequireApprovalIf(func(in refundArgs) bool { panic("policy bug") })
	tests := []struct {
		name string
		opts []tools.Option
		args string
		want bool
		err  func(error) bool
	}{
		{name: "no approval", args: `{"order_id":"o","amount":500}`},
		{name: "always", opts: []tools.Option{tools.RequireApproval()}, args: `{"order_id":"o","amount":1}`, want: true},
		{name: "policy under", opts: []tools.Option{over100}, args: `{"order_id":"o","amount":100}`},
		{name: "policy over", opts: []tools.Option{over100}, args: `{"order_id":"o","amount":100.5}`, want: true},
		{name: "always wins over policy", opts: []tools.Option{over100, tools.RequireApproval()}, args: `{"order_id":"o","amount":1}`, want: true},
		{name: "policy with bad arguments", opts: []tools.Option{over100}, args: `{"order_id":"o","amount":"lots"}`,
			err: func(err error) bool { var ae *tools.ArgumentError; return errors.As(err, &ae) }},
		{name: "always with bad arguments", opts: []tools.Option{tools.RequireApproval()}, args: `{`,
			err: func(err error) bool { var ae *tools.ArgumentError; return errors.As(err, &ae) }},
		{name: "panicking policy", opts: []tools.Option{panics}, args: `{"order_id":"o","amount":1}`,
			err: func(err error) bool { return errors.Is(err, tools.ErrPanic) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tool := mustNew(t, "refund", refund, tt.opts...)
			got, err := tool.NeedsApproval(json.RawMessage(tt.args))
			if tt.err != nil {
				require.Error(t, err, "NeedsApproval")
				assert.True(t, tt.err(err), "NeedsApproval error %v; want another error", err)
				assert.False(t, got, "NeedsApproval with an error")
				return
			}
			require.NoError(t, err, "NeedsApproval")
			assert.Equal(t, tt.want, got, "NeedsApproval")
		})
	}
}

func TestAccessors(t *testing.T) {
	policy := durable.RetryPolicy{MaximumAttempts: 3, InitialInterval: time.Second}
	plain := mustNew(t, "plain", refund)
	tuned := mustNew(t, "tuned", refund, tools.Timeout(5*time.Second), tools.Retry(policy),
		tools.HonorsIdempotencyKey(), tools.MaxResultBytes(100))
	tests := []struct {
		name       string
		tool       *tools.Tool
		timeout    time.Duration
		attempts   int
		idempotent bool
		limit      int
	}{
		{"defaults", plain, 0, 0, false, tools.DefaultMaxResultBytes},
		{"set", tuned, 5 * time.Second, 3, true, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.timeout, tt.tool.Timeout(), "Timeout")
			assert.Equal(t, tt.attempts, tt.tool.RetryPolicy().MaximumAttempts, "RetryPolicy().MaximumAttempts")
			assert.Equal(t, tt.idempotent, tt.tool.HonorsIdempotencyKey(), "HonorsIdempotencyKey")
			assert.Equal(t, tt.limit, tt.tool.MaxResultBytes(), "MaxResultBytes")
			d := tt.tool.Definition()
			assert.Equal(t, tt.tool.Name(), d.Name, "Definition's Name")
			assert.Equal(t, tt.tool.Description(), d.Description, "Definition's Description")
			assert.Equal(t, string(tt.tool.Schema()), string(d.Parameters), "Definition's Parameters")
		})
	}
}

func TestConcurrentCalls(t *testing.T) {
	var n atomic.Int64
	tool := mustNew(t, "count", func(_ context.Context, in refundArgs) (float64, error) {
		n.Add(1)
		return in.Amount, nil
	}, tools.Timeout(time.Minute))
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			args := `{"order_id":"o","amount":` + strings.Repeat("1", i%5+1) + `}`
			if i%3 == 0 {
				args = `{"order_id":1}`
			}
			_, err := tool.Call(context.Background(), []byte(args))
			assert.NoError(t, err) // assert, not require: this is not the test's goroutine
		})
	}
	wg.Wait()
	assert.Equal(t, int64(33), n.Load(), "calls that reached the tool")
}

func TestInterceptKeepsDefinitionAndValidates(t *testing.T) {
	type args struct {
		N int `json:"n" jsonschema:"minimum=1"`
	}
	base := tools.MustNew("double", "Doubles n.", func(ctx context.Context, a args) (int, error) { return 2 * a.N, nil },
		tools.HonorsIdempotencyKey())
	calls := 0
	fixed := base.Intercept(func(ctx context.Context, raw json.RawMessage, next func(context.Context) (tools.Result, error)) (tools.Result, error) {
		calls++
		if string(raw) == `{"n":2}` {
			return tools.Result{Content: "fixture"}, nil
		}
		return next(ctx)
	})
	assert.Equal(t, base.Definition(), fixed.Definition())
	assert.True(t, fixed.HonorsIdempotencyKey())
	res, err := fixed.Call(context.Background(), json.RawMessage(`{"n":2}`))
	require.NoError(t, err)
	assert.Equal(t, "fixture", res.Content)
	res, err = fixed.Call(context.Background(), json.RawMessage(`{"n":3}`))
	require.NoError(t, err)
	assert.Equal(t, "6", res.Content)
	res, err = fixed.Call(context.Background(), json.RawMessage(`{"n":0}`))
	require.NoError(t, err)
	assert.True(t, res.IsError, "bad arguments never reach the interceptor")
	assert.Equal(t, 2, calls)
}
