package tools_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/tools"
)

// FuzzCall feeds arbitrary bytes to Call as a model's arguments: it must
// never panic, never return an error for them, always give valid UTF-8,
// and run the tool only with arguments that are valid JSON and pass the
// schema.
func FuzzCall(f *testing.F) {
	seeds := []string{
		``,
		`{}`,
		`null`,
		`[]`,
		`"str"`,
		`{"order_id":"o-1","items":[{"sku":"a","qty":2}]}`,
		`{"order_id":"o-1","items":[{"sku":"a"}],"gift":{"sku":"g"},"speed":"express"}`,
		`{"order_id":"o-1","items":[{"sku":"a","qty":1e400}]}`,
		`{"order_id":"o-1","items":[{"sku":"a","qty":-0}],"at":"2026-01-01T00:00:00Z"}`,
		`{"order_id":"o-1","items":[{"sku":"a","qty":1.5}]}`,
		`{"order_id":"o-1","items":[{"sku":"a"}],"note":"\ud800"}`,
		`{"order_id":"o-1","order_id":"o-2","items":[{"sku":"a"}]}`,
		`{"order_id":"o-1","items":[{"sku":"a"}]}garbage`,
		"{\"order_id\":\"o-\xff\"}",
		"\xef\xbb\xbf{}",
		`{"order_id":` + strings.Repeat(`[`, 100),
		`{"items":[{"sku":"a","qty":0,"x":{}}],"extra":[1,2,3]}`,
		`{"order_id":"o-1","items":[{"sku":"a"}],"tip":1e1000000000}`,
		`{"order_id":"o-1","items":[{"sku":"a"}],"tip":-1e-9999999}`,
		`{"order_id":"o-1","items":[{"sku":"a"}],"tip":99.5e0}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	var calls atomic.Int64
	tool, err := tools.New("order", "fuzzed", func(_ context.Context, in orderArgs) (orderArgs, error) {
		calls.Add(1)
		return in, nil
	}, tools.MaxResultBytes(512))
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, args []byte) {
		before := calls.Load()
		r, err := tool.Call(context.Background(), args)
		require.NoError(t, err, "Call(%q)", args)
		require.True(t, utf8.ValidString(r.Content), "Call(%q) content is not UTF-8: %q", args, r.Content)
		require.LessOrEqual(t, len(r.Content), 512+100, "content bytes, at most a note past the limit")
		ran := calls.Load() > before
		require.NotEqual(t, ran, r.IsError, "Call(%q): tool ran %v, IsError %v: %s", args, ran, r.IsError, r.Content)
		verr := tool.Validate(args)
		require.Equal(t, ran, verr == nil, "Validate(%q) = %v, but the tool ran %v", args, verr, ran)
		if ran {
			trimmed := strings.Trim(string(args), " \t\r\n")
			if trimmed != "" {
				require.True(t, json.Valid(args) && utf8.Valid(args), "tool ran with invalid JSON %q", args)
			}
		} else {
			require.True(t, strings.HasPrefix(r.Content, `invalid arguments for tool "order":`), "Call(%q) error content %q", args, r.Content)
		}
	})
}
