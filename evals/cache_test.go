package evals_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/evals"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// moody is a model that never answers the same way twice: it looks the
// order up, then answers with the number of calls it has had.
func moody(calls *atomic.Int64) *scripted.Model {
	return scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		n := calls.Add(1)
		if scripted.Turn(req) == 0 {
			return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
				{Name: "lookup", Arguments: fmt.Sprintf(`{"order_id":"A1","at":"call %d"}`, n)}}}}, nil
		}
		return providers.Response{Message: providers.Message{Content: fmt.Sprintf("answer #%d", n)}}, nil
	})
}

// runShop runs the shop agent once, with model and instructions, on a
// fresh store.
func runShop(t *testing.T, model providers.Model, instructions string) agent.RunResult {
	t.Helper()
	a := (&shop{}).agent(t, model, true)
	a.Instructions = instructions
	d := deploy(t, a)
	ctx := ctxT(t)
	run, err := d.rt.Start(ctx, a, "run", agent.Input{Message: "Refund my order A1."})
	require.NoError(t, err)
	d.drain()
	res, err := run.Result(ctx)
	require.NoError(t, err)
	return res
}

// TestCachedRerun runs an agent whose model never answers twice the same
// way: a second run over the same inputs is answered from the cache, with
// no model call and the same result; a changed prompt misses; a corrupt
// entry is a miss, reported, and written again.
func TestCachedRerun(t *testing.T) {
	dir := t.TempDir()
	cache, err := evals.OpenCache(dir)
	require.NoError(t, err)
	var calls atomic.Int64
	model := evals.CachedModel(moody(&calls), cache)
	_, streams := model.(providers.StreamingModel)
	assert.True(t, streams, "a cached streaming model streams")

	first := runShop(t, model, "You refund orders.")
	require.Equal(t, int64(2), calls.Load())
	assert.Equal(t, "answer #2", first.Text)
	assert.Equal(t, evals.CacheStats{Misses: 2}, cache.Stats())

	second := runShop(t, model, "You refund orders.")
	assert.Equal(t, int64(2), calls.Load(), "no model call on the rerun")
	assert.Equal(t, first, second, "the rerun's result is the first one's")
	assert.Equal(t, evals.CacheStats{Hits: 2, Misses: 2}, cache.Stats())

	changed := runShop(t, model, "You refund orders, politely.")
	assert.Equal(t, int64(4), calls.Load(), "a changed prompt calls the model")
	assert.Equal(t, "answer #4", changed.Text)
	assert.Equal(t, 4, cache.Stats().Misses)

	// Spoil the entry of the first request: it misses, and is reported;
	// so does the next, which follows a new answer.
	entries, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	require.Len(t, entries, 4)
	key, err := evals.CacheKey(moody(&calls), firstRequest(t, first, "You refund orders."))
	require.NoError(t, err)
	spoiled := filepath.Join(dir, key+".json")
	require.FileExists(t, spoiled)
	require.NoError(t, os.WriteFile(spoiled, []byte(`{"version":1,"respon`), 0o644))
	third := runShop(t, model, "You refund orders.")
	assert.Equal(t, int64(6), calls.Load(), "a corrupt entry is a miss")
	assert.Equal(t, "answer #6", third.Text)
	stats := cache.Stats()
	assert.Equal(t, 1, stats.Corrupt)
	require.Len(t, stats.Problems, 1)
	assert.Contains(t, stats.Problems[0], "corrupt cache entry "+spoiled)
	fourth := runShop(t, model, "You refund orders.")
	assert.Equal(t, int64(6), calls.Load(), "the entries were written again")
	assert.Equal(t, third, fourth)
}

// firstRequest rebuilds the first request of a run of the shop, as the
// agent sends it.
func firstRequest(t *testing.T, res agent.RunResult, instructions string) providers.Request {
	t.Helper()
	var defs []providers.ToolDefinition
	for _, d := range (&shop{}).agent(t, nil, true).Tools.Definitions() {
		defs = append(defs, providers.ToolDefinition{Name: d.Name, Description: d.Description, Parameters: d.Parameters})
	}
	return providers.Request{System: instructions, Messages: res.Messages[:1], Tools: defs}
}

// TestCachedModel checks the cache without an agent: streamed hits,
// errors not kept, and concurrent callers.
func TestCachedModel(t *testing.T) {
	ctx := ctxT(t)
	cache, err := evals.OpenCache(filepath.Join(t.TempDir(), "cache"))
	require.NoError(t, err)
	var calls atomic.Int64
	fail := true
	var mu sync.Mutex
	m := evals.CachedModel(scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		calls.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			return providers.Response{}, errors.New("overloaded")
		}
		return providers.Response{Message: providers.Message{Content: "hello there, " + req.Messages[0].Content,
			ToolCalls: []providers.ToolCall{{ID: "c1", Name: "wave", Arguments: `{"hand":"left"}`}}}}, nil
	}), cache)
	req := providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "ann"}}}

	_, err = m.Generate(ctx, req)
	require.Error(t, err)
	want, err := m.Generate(ctx, req)
	require.NoError(t, err, "an error is not cached")
	assert.Equal(t, int64(2), calls.Load())

	var text strings.Builder
	var args strings.Builder
	got, err := m.(providers.StreamingModel).Stream(ctx, req, func(d providers.Delta) error {
		text.WriteString(d.Text)
		if d.ToolCall != nil {
			args.WriteString(d.ToolCall.Arguments)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, int64(2), calls.Load(), "a streamed hit")
	assert.Equal(t, want, got)
	assert.Equal(t, "hello there, ann", text.String())
	assert.Equal(t, `{"hand":"left"}`, args.String())

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r := req
			r.Messages = []providers.Message{{Role: providers.RoleUser, Content: fmt.Sprint("user ", i%2)}}
			_, err := m.Generate(ctx, r)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	stats := cache.Stats()
	assert.Equal(t, 11, stats.Hits+stats.Misses)
	assert.Empty(t, stats.Problems)
	again, err := m.Generate(ctx, providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "user 1"}}})
	require.NoError(t, err)
	assert.Equal(t, "hello there, user 1", again.Message.Content)
}
