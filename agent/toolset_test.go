package agent_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// memToolset is a toolset in memory whose tools a test replaces, as an
// MCP server's change.
type memToolset struct {
	name  string
	mu    sync.Mutex
	set   *tools.Set
	lists atomic.Int64 // calls of Tools
}

var _ agent.Toolset = (*memToolset)(nil)

func (m *memToolset) Name() string { return m.name }

func (m *memToolset) Tools(context.Context) (*tools.Set, error) {
	m.lists.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.set, nil
}

func (m *memToolset) replace(set *tools.Set) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.set = set
}

// rawTool is a raw tool that answers with its name and arguments.
func rawTool(t *testing.T, name string, calls *atomic.Int64, opts ...tools.Option) *tools.Tool {
	t.Helper()
	tool, err := tools.NewRaw(name, "the tool "+name,
		json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}`),
		func(ctx context.Context, args json.RawMessage) (tools.Result, error) {
			if calls != nil {
				calls.Add(1)
			}
			return tools.Result{Content: name + " " + string(args)}, nil
		}, opts...)
	require.NoError(t, err)
	return tool
}

func definedNames(req providers.Request) []string {
	var names []string
	for _, d := range req.Tools {
		names = append(names, d.Name)
	}
	return names
}

// toolsetEvents counts the listing activities a history completed.
func toolsetListings(h []backend.Event, agentName string) int {
	n := 0
	for _, ev := range h {
		if ev.Type == backend.EventActivityCompleted && ev.Name == "toolset:"+agentName {
			n++
		}
	}
	return n
}

// TestToolsetListedOncePerRun: a run lists its toolsets once; the model
// sees that list on every turn even when the toolset changes under it; a
// tool that has gone is an error the model reads; the next run sees the
// new list.
func TestToolsetListedOncePerRun(t *testing.T) {
	var lookups atomic.Int64
	ts := &memToolset{name: "remote", set: mustSet(t, rawTool(t, "lookup", &lookups))}
	runs := map[string][]providers.Response{
		"go": {toolTurn(call("lookup", `{"q":"a"}`)),
			toolTurn(call("lookup", `{"q":"b"}`), call("lookup", `{"x":1}`)),
			answer("done")},
		"again": {toolTurn(call("fresh", `{"q":"c"}`)), answer("done again")},
	}
	rec, model := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		return runs[userTexts(req)[0]][turn], nil
	})
	a := &agent.Agent{Name: "lister", Model: model, Toolsets: []agent.Toolset{ts}, ModelOptions: fastModel}
	e := newEnv(t, a)

	// The tool goes after its first call.
	var fresh atomic.Int64
	first := rawTool(t, "lookup", nil, tools.MaxResultBytes(1000))
	ts.replace(mustSet(t, first.Intercept(func(ctx context.Context, args json.RawMessage, next func(context.Context) (tools.Result, error)) (tools.Result, error) {
		lookups.Add(1)
		ts.replace(mustSet(t, rawTool(t, "fresh", &fresh)))
		return next(ctx)
	})))
	res := e.result(e.startRun(a, "list-1", agent.Input{Message: "go"}))
	assert.Equal(t, "done", res.Text)
	assert.Equal(t, `lookup {"q":"a"}`, toolResult(t, res.Messages, res.Messages[2].ToolCallID))
	assert.Equal(t, []string{"lookup"}, definedNames(rec.request(t, 0)))
	assert.Equal(t, []string{"lookup"}, definedNames(rec.request(t, 1)), "the recorded list, not the live one")
	gone := res.Messages[len(res.Messages)-3].Content
	assert.Contains(t, gone, "the tool lookup is no longer offered by remote")
	bad := res.Messages[len(res.Messages)-2].Content
	assert.Contains(t, bad, `invalid arguments for tool "lookup"`, "checked against the recorded schema, in the loop")
	assert.Equal(t, int64(1), lookups.Load())
	h := e.history("list-1")
	assert.Equal(t, 1, toolsetListings(h, "lister"))
	e.replays(a, "list-1")

	res = e.result(e.startRun(a, "list-2", agent.Input{Message: "again"}))
	assert.Equal(t, "done again", res.Text)
	assert.Equal(t, []string{"fresh"}, definedNames(rec.request(t, 0)), "a new run lists again")
	assert.Equal(t, int64(1), fresh.Load())
}

// TestToolsetReplayDoesNotList: a run rebuilt by another worker (here
// while it waits for an approval that a listed tool needs) reads its list
// from history: Tools is called once for the list and once per call.
func TestToolsetReplayDoesNotList(t *testing.T) {
	var calls atomic.Int64
	ts := &memToolset{name: "remote", set: mustSet(t, rawTool(t, "pay", &calls, tools.RequireApproval()))}
	_, model := script(toolTurn(call("pay", `{"q":"10"}`)), answer("paid"))
	a := &agent.Agent{Name: "payer", Model: model, Toolsets: []agent.Toolset{ts}, ModelOptions: fastModel}
	e := newEnv(t, a)
	run := e.startRun(a, "pay-1", agent.Input{Message: "pay"})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	e.halt()
	e.start() // a new worker: no run in memory
	pending, err := e.rt.Pending(ctxT(t), agent.PendingFilter{Kind: agent.KindApproval})
	require.NoError(t, err)
	require.Len(t, pending, 1)
	assert.Equal(t, "pay", pending[0].Tool)
	require.NoError(t, e.rt.Decide(ctxT(t), run.ID, agent.Decision{CallID: pending[0].CallID, Approved: true, By: "kim"}))
	assert.Equal(t, "paid", e.result(run).Text)
	assert.Equal(t, int64(1), calls.Load())
	assert.Equal(t, int64(2), ts.lists.Load(), "one listing, one call: replay lists nothing")
	e.replays(a, run.ID)
}

// TestToolsetNameTaken: a listed tool whose name another tool of the agent
// has is left out, and the recorded list says so.
func TestToolsetNameTaken(t *testing.T) {
	var local, remote atomic.Int64
	ts := &memToolset{name: "remote", set: mustSet(t, rawTool(t, "lookup", &remote), rawTool(t, "other", nil))}
	_, model := script(toolTurn(call("lookup", `{"q":"a"}`)), answer("ok"))
	a := &agent.Agent{Name: "clash", Model: model, Toolsets: []agent.Toolset{ts}, ModelOptions: fastModel,
		Tools: mustSet(t, rawTool(t, "lookup", &local))}
	e := newEnv(t, a)
	res := e.result(e.startRun(a, "clash-1", agent.Input{Message: "go"}))
	assert.Equal(t, "ok", res.Text)
	assert.Equal(t, int64(1), local.Load())
	assert.Equal(t, int64(0), remote.Load())
	var list struct {
		Tools   []struct{ Name string }
		Hash    string
		Dropped []string
	}
	for _, ev := range e.history("clash-1") {
		if ev.Type == backend.EventActivityCompleted && ev.Name == "toolset:clash" {
			require.NoError(t, json.Unmarshal(ev.Payload, &list))
		}
	}
	require.Len(t, list.Tools, 1)
	assert.Equal(t, "other", list.Tools[0].Name)
	assert.Len(t, list.Hash, 64)
	assert.Equal(t, []string{"toolset remote: tool lookup: the name is taken"}, list.Dropped)

	bad := &agent.Agent{Name: "bad", Model: model, Toolsets: []agent.Toolset{ts, ts}}
	assert.ErrorContains(t, agent.NewRuntime(newMemoryStore(), agent.Options{}).Register(bad), `two toolsets are named "remote"`)
}

// TestToolsetNewGeneration: a conversation lists its toolsets again when
// it starts a new generation, and only then.
func TestToolsetNewGeneration(t *testing.T) {
	ts := &memToolset{name: "remote", set: mustSet(t, rawTool(t, "v1", nil))}
	rec, model := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
		return answer(definedNames(req)[0]), nil
	})
	a := &agent.Agent{Name: "gens", Model: model, Toolsets: []agent.Toolset{ts}, ConversationLimit: 2, ModelOptions: fastModel}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run := e.startRun(a, "gens-1", agent.Input{Conversation: true})
	r, err := say(ctx, e.rt, run.ID, "one")
	require.NoError(t, err)
	assert.Equal(t, "v1", r.Text)
	ts.replace(mustSet(t, rawTool(t, "v2", nil)))
	r, err = say(ctx, e.rt, run.ID, "two")
	require.NoError(t, err)
	assert.Equal(t, "v1", r.Text, "the same generation keeps its list")
	r, err = say(ctx, e.rt, run.ID, "three")
	require.NoError(t, err)
	assert.Equal(t, "v2", r.Text, "a new generation lists again")
	require.NoError(t, e.rt.End(ctx, run.ID))
	e.result(run)
	assert.Equal(t, 3, len(rec.reqs))
	assert.Equal(t, int64(2), ts.lists.Load())
}

// TestToolsetTraced: the listing is a span, list_tools, with the list's
// hash and size; its tools' calls are execute_tool spans like any tool's.
func TestToolsetTraced(t *testing.T) {
	ts := &memToolset{name: "remote", set: mustSet(t, rawTool(t, "lookup", nil))}
	_, model := script(toolTurn(call("lookup", `{"q":"a"}`)), answer("ok"))
	a := &agent.Agent{Name: "traced-toolset", Model: model, Toolsets: []agent.Toolset{ts}, ModelOptions: fastModel}
	e := newTelemetryEnv(t, false, a)
	e.result(e.startRun(a, "traced-toolset-1", agent.Input{Message: "go"}))
	eventually(t, "the run's span", func() bool {
		return slices.Contains(names(e.spans.GetSpans()), "invoke_agent traced-toolset")
	})
	spanNames := names(e.spans.GetSpans())
	assert.Contains(t, spanNames, "execute_tool lookup")
	for _, s := range e.spans.GetSpans() {
		if s.Name != "list_tools" {
			continue
		}
		hash, ok := attr(s, "cairn.tools.hash")
		require.True(t, ok)
		assert.Len(t, hash.AsString(), 64)
		n, _ := attr(s, "cairn.tools.count")
		assert.Equal(t, int64(1), n.AsInt64())
		return
	}
	t.Fatalf("no list_tools span in %v", spanNames)
}

// TestToolsetAddedToRunsInFlight: a deploy gives an agent a toolset while
// one of its runs waits: that run goes on without it (its history has no
// listing), and a new run lists it.
func TestToolsetAddedToRunsInFlight(t *testing.T) {
	store := newMemoryStore()
	pay := rawTool(t, "pay", nil, tools.RequireApproval())
	_, model := script(toolTurn(call("pay", `{"q":"1"}`)), answer("paid"))
	v1 := &agent.Agent{Name: "evolving", Model: model, Tools: mustSet(t, pay), ModelOptions: fastModel}
	e1 := newEnvOn(t, store, agent.Options{}, v1)
	run := e1.startRun(v1, "evolving-1", agent.Input{Message: "pay"})
	e1.waitStatus(run.ID, backend.StatusAwaitingApproval)
	e1.halt()

	ts := &memToolset{name: "remote", set: mustSet(t, rawTool(t, "lookup", nil))}
	rec, model2 := script(toolTurn(call("pay", `{"q":"1"}`)), answer("paid"))
	v2 := &agent.Agent{Name: "evolving", Model: model2, Tools: mustSet(t, pay), Toolsets: []agent.Toolset{ts}, ModelOptions: fastModel}
	e2 := newEnvOn(t, store, agent.Options{}, v2)
	e2.replays(v2, run.ID)
	require.NoError(t, e2.rt.Decide(ctxT(t), run.ID, agent.Decision{CallID: "call_0_0", Approved: true, By: "kim"}))
	assert.Equal(t, "paid", e2.result(run).Text)
	assert.Equal(t, int64(0), ts.lists.Load(), "the run in flight did not list")
	assert.Equal(t, []string{"pay"}, definedNames(rec.request(t, 1)))
	e2.replays(v2, run.ID)

	run2 := e2.startRun(v2, "evolving-2", agent.Input{Message: "pay"})
	e2.waitStatus(run2.ID, backend.StatusAwaitingApproval)
	require.NoError(t, e2.rt.Decide(ctxT(t), run2.ID, agent.Decision{CallID: "call_0_0", Approved: true, By: "kim"}))
	e2.result(run2)
	assert.Equal(t, int64(1), ts.lists.Load(), "a new run lists")
}
