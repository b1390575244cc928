package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// serveEnv is a runtime on an in-memory store with a worker, an
// AgentServer of its agents on httptest, and a connected SDK client.
type serveEnv struct {
	rt      *agent.Runtime
	store   *inmem.Store
	srv     *mcp.AgentServer
	web     *httptest.Server
	session *sdk.ClientSession

	mu       sync.Mutex
	progress []*sdk.ProgressNotificationParams
	notified chan struct{} // a progress notification came
}

func newServeEnv(t *testing.T, opts mcp.ServeOptions, headers http.Header, others ...durable.WorkflowDefinition) *serveEnv {
	t.Helper()
	e := &serveEnv{store: inmem.New(), notified: make(chan struct{}, 1)}
	e.rt = agent.NewRuntime(e.store, agent.Options{})
	require.NoError(t, e.rt.Register(opts.Agents...))
	ctx, stop := context.WithCancel(context.Background())
	worker := e.rt.NewWorker(durable.WorkerOptions{})
	worker.Register(others...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = worker.Run(ctx)
	}()
	var err error
	e.srv, err = mcp.NewAgentServer(e.rt, opts)
	require.NoError(t, err)
	e.web = httptest.NewServer(e.srv)
	// Registered before the clients connect, so that it runs after they
	// have closed their sessions (and their streams).
	t.Cleanup(func() {
		e.web.Close()
		stop()
		<-done
	})
	e.session = e.connect(t, headers)
	return e
}

// client is an SDK client that keeps the progress notifications it gets.
func (e *serveEnv) client() *sdk.Client {
	return sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.progress = append(e.progress, req.Params)
			select {
			case e.notified <- struct{}{}:
			default:
			}
		}})
}

// connect connects a client that sends headers with every request.
func (e *serveEnv) connect(t *testing.T, headers http.Header) *sdk.ClientSession {
	t.Helper()
	transport := &sdk.StreamableClientTransport{Endpoint: e.web.URL,
		HTTPClient: &http.Client{Transport: serveHeaders{headers}}}
	session, err := e.client().Connect(t.Context(), transport, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = session.Close() })
	return session
}

// connectInMemory connects a client to the server's MCPServer through
// in-memory transports, not HTTP.
func (e *serveEnv) connectInMemory(t *testing.T) *sdk.ClientSession {
	t.Helper()
	st, ct := sdk.NewInMemoryTransports()
	ss, err := e.srv.MCPServer().Connect(t.Context(), st, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ss.Close() })
	session, err := e.client().Connect(t.Context(), ct, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = session.Close() })
	return session
}

type serveHeaders struct{ h http.Header }

func (h serveHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.h {
		r.Header[k] = v
	}
	return http.DefaultTransport.RoundTrip(r)
}

// waitProgress waits until the last progress notification says msg.
func (e *serveEnv) waitProgress(t *testing.T, msg string) {
	t.Helper()
	for {
		e.mu.Lock()
		n := len(e.progress)
		last := n > 0 && e.progress[n-1].Message == msg
		e.mu.Unlock()
		if last {
			return
		}
		select {
		case <-e.notified:
		case <-t.Context().Done():
			t.Fatalf("no progress %q", msg)
		}
	}
}

// call calls a tool with arguments (JSON-encodable, or raw JSON).
func (e *serveEnv) call(t *testing.T, tool string, args any, meta sdk.Meta) *sdk.CallToolResult {
	t.Helper()
	res, err := e.session.CallTool(t.Context(), &sdk.CallToolParams{Name: tool, Arguments: args, Meta: meta})
	require.NoError(t, err)
	return res
}

// serveTextOf is a result's text.
func serveTextOf(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// serveRunOf is the ServedRun in a result's _meta.
func serveRunOf(t *testing.T, res *sdk.CallToolResult) mcp.ServedRun {
	t.Helper()
	raw, ok := res.Meta[mcp.MetaServedRun]
	require.True(t, ok, "the result has no %s: %s", mcp.MetaServedRun, serveTextOf(res))
	data, err := json.Marshal(raw)
	require.NoError(t, err)
	var run mcp.ServedRun
	require.NoError(t, json.Unmarshal(data, &run))
	return run
}

// serveWaitPending waits until run id waits for a person.
func serveWaitPending(t *testing.T, rt *agent.Runtime, id string) []agent.PendingCall {
	t.Helper()
	for {
		info, err := rt.Client().Describe(t.Context(), id)
		require.NoError(t, err)
		pending, err := rt.Pending(t.Context(), agent.PendingFilter{RunID: id})
		require.NoError(t, err)
		if len(pending) > 0 {
			return pending
		}
		require.False(t, info.Status.Terminal(), "run %s ended: %s", id, info.Status)
		require.NoError(t, rt.Client().WaitChange(t.Context(), info))
	}
}

// serveAnswering is an agent that answers answer at once, counting its model
// calls.
func serveAnswering(name, answer string, calls *atomic.Int32) *agent.Agent {
	return &agent.Agent{Name: name, Description: "Answers.", Model: scripted.Func(
		func(ctx context.Context, req providers.Request) (providers.Response, error) {
			calls.Add(1)
			return providers.Response{Message: providers.Message{Content: answer}}, nil
		})}
}

type serveRefundArgs struct {
	Amount int `json:"amount"`
}

// serveRefunder refunds, with a person's approval, then answers.
func serveRefunder(refunds *atomic.Int32) *agent.Agent {
	refund := tools.MustNew("refund", "Refund, in euros.", func(ctx context.Context, in serveRefundArgs) (string, error) {
		refunds.Add(1)
		return fmt.Sprintf("refunded %d", in.Amount), nil
	}, tools.RequireApproval())
	set, err := tools.NewSet(refund)
	if err != nil {
		panic(err)
	}
	return &agent.Agent{Name: "serveRefunder", Tools: set, Model: scripted.Func(
		func(ctx context.Context, req providers.Request) (providers.Response, error) {
			if scripted.Turn(req) == 0 {
				return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
					{Name: "refund", Arguments: `{"amount":120}`}}}}, nil
			}
			last := req.Messages[len(req.Messages)-1]
			return providers.Response{Message: providers.Message{Content: "Done: " + last.Content}}, nil
		})}
}

func TestServeAnswers(t *testing.T) {
	type verdict struct {
		Refund bool   `json:"refund"`
		Reason string `json:"reason"`
	}
	out, err := agent.OutputOf[verdict]("verdict", "Whether to refund.")
	require.NoError(t, err)
	judge := &agent.Agent{Name: "judge", Output: out, Model: scripted.New(providers.Response{
		Message: providers.Message{Content: `{"refund":true,"reason":"it came cold"}`}})}
	var calls atomic.Int32
	e := newServeEnv(t, mcp.ServeOptions{Agents: []*agent.Agent{serveAnswering("helper", "Hello.", &calls), judge}}, nil)

	var names []string
	for tool, err := range e.session.Tools(t.Context(), nil) {
		require.NoError(t, err)
		names = append(names, tool.Name)
		if tool.Name == "helper" {
			assert.Contains(t, tool.Description, "Answers.")
			schema, err := json.Marshal(tool.InputSchema)
			require.NoError(t, err)
			assert.Contains(t, string(schema), `"required":["message"]`)
		}
	}
	assert.ElementsMatch(t, []string{"helper", "judge", mcp.RunResultTool}, names, "no cancel tool unless asked for")

	res := e.call(t, "helper", map[string]any{"message": "Hi", "run_id": "r-1"}, nil)
	assert.False(t, res.IsError)
	assert.Equal(t, "Hello.", serveTextOf(res))
	assert.Nil(t, res.StructuredContent, "an agent without an Output type has no structured content")
	assert.Equal(t, mcp.ServedRun{RunID: "r-1", Agent: "helper", Status: "completed"}, serveRunOf(t, res))

	res = e.call(t, "judge", map[string]any{"message": "My pizza came cold."}, nil)
	assert.False(t, res.IsError, serveTextOf(res))
	assert.Equal(t, map[string]any{"refund": true, "reason": "it came cold"}, res.StructuredContent)
	run := serveRunOf(t, res)
	assert.True(t, strings.HasPrefix(run.RunID, "mcp-"), "a run id is made: %s", run.RunID)
	assert.Equal(t, "completed", run.Status)
	info, err := e.rt.Client().Describe(t.Context(), run.RunID)
	require.NoError(t, err)
	assert.Equal(t, "judge", info.Workflow)
}

// A call with the run id of an existing run attaches to it, whatever the
// process that serves it: a retry starts no second run.
func TestServeIdempotent(t *testing.T) {
	var calls atomic.Int32
	e := newServeEnv(t, mcp.ServeOptions{Agents: []*agent.Agent{serveAnswering("helper", "Hello.", &calls)}}, nil)

	args := map[string]any{"message": "Hi", "run_id": "ticket-9"}
	first := e.call(t, "helper", args, nil)
	again := e.call(t, "helper", args, nil)
	other := e.connect(t, nil) // another client, as after a reconnect
	res, err := other.CallTool(t.Context(), &sdk.CallToolParams{Name: "helper", Arguments: args})
	require.NoError(t, err)
	for _, r := range []*sdk.CallToolResult{first, again, res} {
		assert.Equal(t, "Hello.", serveTextOf(r))
		assert.Equal(t, "ticket-9", serveRunOf(t, r).RunID)
	}
	assert.EqualValues(t, 1, calls.Load(), "one run, one model call")

	// The same id with another message is another run: refused.
	clash := e.call(t, "helper", map[string]any{"message": "Bye", "run_id": "ticket-9"}, nil)
	assert.True(t, clash.IsError)
	assert.Contains(t, serveTextOf(clash), "start run ticket-9")
	assert.Contains(t, serveTextOf(clash), durable.ErrRunExists.Error())

	// Without a run id, the request's idempotency key names the run.
	meta := sdk.Meta{mcp.MetaIdempotencyKey: "req-77"}
	k1 := e.call(t, "helper", map[string]any{"message": "Hi"}, meta)
	k2 := e.call(t, "helper", map[string]any{"message": "Hi"}, meta)
	assert.Equal(t, serveRunOf(t, k1).RunID, serveRunOf(t, k2).RunID)
	assert.EqualValues(t, 2, calls.Load())
	// Without either, every call is a run of its own.
	n1 := e.call(t, "helper", map[string]any{"message": "Hi"}, nil)
	n2 := e.call(t, "helper", map[string]any{"message": "Hi"}, nil)
	assert.NotEqual(t, serveRunOf(t, n1).RunID, serveRunOf(t, n2).RunID)
	assert.EqualValues(t, 4, calls.Load())
}

// A run that outlives the wait is answered with its id and status, the
// approvals it waits on included; the result tool waits for it.
func TestServeRunOutlivesWait(t *testing.T) {
	var refunds atomic.Int32
	a := serveRefunder(&refunds)
	e := newServeEnv(t, mcp.ServeOptions{Agents: []*agent.Agent{a}}, nil)

	res := e.call(t, "serveRefunder", map[string]any{"message": "Refund my 120 euros.", "run_id": "refund-1", "wait_seconds": 0}, nil)
	assert.False(t, res.IsError, "a run still going is no error: %s", serveTextOf(res))
	run := serveRunOf(t, res)
	assert.Equal(t, "refund-1", run.RunID)
	assert.NotEqual(t, "completed", run.Status)
	assert.Contains(t, serveTextOf(res), `Call cairn_run_result with {"run_id":"refund-1"}`)

	serveWaitPending(t, e.rt, "refund-1")
	res = e.call(t, mcp.RunResultTool, map[string]any{"run_id": "refund-1", "wait_seconds": 0}, nil)
	assert.False(t, res.IsError)
	run = serveRunOf(t, res)
	assert.Equal(t, "awaiting_approval", run.Status)
	require.Len(t, run.Pending, 1)
	assert.Equal(t, agent.KindApproval, run.Pending[0].Kind)
	assert.Equal(t, "refund", run.Pending[0].Tool)
	assert.Contains(t, serveTextOf(res), "It waits for a person to approve or reject call "+run.Pending[0].CallID+`: refund {"amount":120}`)

	require.NoError(t, e.rt.Decide(t.Context(), "refund-1", agent.Decision{CallID: run.Pending[0].CallID, Approved: true, By: "alice"}))
	res = e.call(t, mcp.RunResultTool, map[string]any{"run_id": "refund-1"}, nil)
	assert.False(t, res.IsError)
	assert.Equal(t, `Done: "refunded 120"`, serveTextOf(res))
	assert.Equal(t, "completed", serveRunOf(t, res).Status)
	assert.EqualValues(t, 1, refunds.Load())
}

func TestServeFailedRun(t *testing.T) {
	broken := &agent.Agent{Name: "broken", Model: scripted.Func(func(context.Context, providers.Request) (providers.Response, error) {
		return providers.Response{}, durable.NonRetryable(errors.New("the model is gone"))
	})}
	e := newServeEnv(t, mcp.ServeOptions{Agents: []*agent.Agent{broken}}, nil)

	res := e.call(t, "broken", map[string]any{"message": "Hi", "run_id": "b-1"}, nil)
	assert.True(t, res.IsError)
	assert.Contains(t, serveTextOf(res), "Run b-1 (agent broken) failed: ")
	assert.Contains(t, serveTextOf(res), "the model is gone")
	run := serveRunOf(t, res)
	assert.Equal(t, "failed", run.Status)
	assert.Contains(t, run.Error, "the model is gone")

	res = e.call(t, mcp.RunResultTool, map[string]any{"run_id": "b-1"}, nil)
	assert.True(t, res.IsError)
	assert.Contains(t, serveTextOf(res), "the model is gone")
}

// Bad arguments are error results that say what is wrong, never a crash
// and never a run.
func TestServeBadArguments(t *testing.T) {
	var calls atomic.Int32
	// A run of a workflow that is not served.
	other := durable.NewWorkflow("other", func(ctx durable.Context, in string) (string, error) { return in, nil })
	e := newServeEnv(t, mcp.ServeOptions{Agents: []*agent.Agent{serveAnswering("helper", "Hello.", &calls)}, Cancel: true}, nil, other)
	_, err := other.Start(t.Context(), e.rt.Client(), "not-yours", "x")
	require.NoError(t, err)

	for _, c := range []struct {
		name, tool string
		args       any
		want       string
	}{
		{"no arguments", "helper", nil, "message is required"},
		{"empty message", "helper", map[string]any{"message": ""}, "message is required"},
		{"unknown field", "helper", map[string]any{"message": "Hi", "prompt": "x"}, `unknown field "prompt"`},
		{"wrong type", "helper", map[string]any{"message": 42}, "invalid arguments"},
		{"not an object", "helper", json.RawMessage(`["Hi"]`), "invalid arguments"},
		{"negative wait", "helper", map[string]any{"message": "Hi", "wait_seconds": -1}, "wait_seconds is negative"},
		{"run id with a slash", "helper", map[string]any{"message": "Hi", "run_id": "a/b"}, `run_id "a/b" must be`},
		{"run id with braces", "helper", map[string]any{"message": "Hi", "run_id": "{r}"}, `run_id "{r}" must be`},
		{"run id too long", "helper", map[string]any{"message": "Hi", "run_id": strings.Repeat("x", 129)}, "must be 1 to 128"},
		{"result without id", mcp.RunResultTool, map[string]any{}, `run_id "" must be`},
		{"result of no run", mcp.RunResultTool, map[string]any{"run_id": "nope"}, "no run nope"},
		{"result of a run not served", mcp.RunResultTool, map[string]any{"run_id": "not-yours"}, "no run not-yours"},
		{"cancel with a wait", mcp.CancelRunTool, map[string]any{"run_id": "nope", "wait_seconds": 1}, `unknown field "wait_seconds"`},
		{"cancel of no run", mcp.CancelRunTool, map[string]any{"run_id": "nope"}, "no run nope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := e.call(t, c.tool, c.args, nil)
			assert.True(t, res.IsError)
			assert.Contains(t, serveTextOf(res), c.want)
		})
	}
	assert.Zero(t, calls.Load(), "no run started")
	// An unknown tool is the protocol's error.
	_, err = e.session.CallTool(t.Context(), &sdk.CallToolParams{Name: "nope", Arguments: map[string]any{}})
	assert.ErrorContains(t, err, `unknown tool "nope"`)
}

// The run's live events reach a client that asked for progress: over
// stateless HTTP (the default), HTTP with sessions, and another transport.
func TestServeProgress(t *testing.T) {
	for _, transport := range []string{"stateless", "sessions", "in-memory"} {
		t.Run(transport, func(t *testing.T) {
			lookup := tools.MustNew("lookup_order", "Find an order.", func(ctx context.Context, in struct {
				Order string `json:"order"`
			}) (string, error) {
				return "shipped", nil
			})
			set, err := tools.NewSet(lookup)
			require.NoError(t, err)
			support := &agent.Agent{Name: "support", Tools: set, Model: scripted.New(
				providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{Name: "lookup_order", Arguments: `{"order":"A-1"}`}}}},
				providers.Response{Message: providers.Message{Content: "It shipped."}})}
			opts := mcp.ServeOptions{Agents: []*agent.Agent{support}}
			if transport == "sessions" {
				opts.HTTP = &sdk.StreamableHTTPOptions{}
			}
			e := newServeEnv(t, opts, nil)
			if transport == "in-memory" {
				e.session = e.connectInMemory(t)
			}

			res := e.call(t, "support", map[string]any{"message": "Where is A-1?"}, sdk.Meta{"progressToken": "p-1"})
			assert.Equal(t, "It shipped.", serveTextOf(res))
			// The client hands notifications to its handler apart from
			// the results: the last may come after the answer.
			e.waitProgress(t, "run completed")
			e.mu.Lock()
			defer e.mu.Unlock()
			var messages []string
			for i, p := range e.progress {
				assert.Equal(t, "p-1", p.ProgressToken)
				assert.EqualValues(t, i+1, p.Progress, "progress increases")
				messages = append(messages, p.Message)
			}
			all := strings.Join(messages, "|")
			assert.Contains(t, all, `calling lookup_order {"order":"A-1"}|lookup_order finished`)
			assert.Contains(t, all, "It shipped.")
		})
	}
}

// serveBlocker is an agent whose tool blocks until release is closed.
func serveBlocker(started chan<- struct{}, release <-chan struct{}) *agent.Agent {
	hold := tools.MustNew("hold", "Hold on.", func(ctx context.Context, _ struct{}) (string, error) {
		started <- struct{}{}
		select {
		case <-release:
			return "released", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	set, err := tools.NewSet(hold)
	if err != nil {
		panic(err)
	}
	return &agent.Agent{Name: "blocker", Tools: set, Model: scripted.Func(
		func(ctx context.Context, req providers.Request) (providers.Response, error) {
			if scripted.Turn(req) == 0 {
				return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{Name: "hold", Arguments: `{}`}}}}, nil
			}
			return providers.Response{Message: providers.Message{Content: "held and " + req.Messages[len(req.Messages)-1].Content}}, nil
		})}
}

// A canceled request stops its wait, not its run; the cancel tool cancels
// the run.
func TestServeCancel(t *testing.T) {
	started, release := make(chan struct{}, 4), make(chan struct{})
	e := newServeEnv(t, mcp.ServeOptions{Agents: []*agent.Agent{serveBlocker(started, release)}, Cancel: true}, nil)

	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, 1)
	go func() {
		_, err := e.session.CallTool(ctx, &sdk.CallToolParams{Name: "blocker", Arguments: map[string]any{"message": "Hold", "run_id": "h-1"}})
		errs <- err
	}()
	<-started
	cancel()
	assert.ErrorIs(t, <-errs, context.Canceled)
	close(release)
	res := e.call(t, mcp.RunResultTool, map[string]any{"run_id": "h-1"}, nil)
	assert.False(t, res.IsError, serveTextOf(res))
	assert.Equal(t, `held and "released"`, serveTextOf(res), "the run went on")

	// With the cancel tool, a client cancels a run.
	hold2 := make(chan struct{})
	t.Cleanup(func() { close(hold2) })
	e2 := newServeEnv(t, mcp.ServeOptions{Agents: []*agent.Agent{serveBlocker(started, hold2)}, Cancel: true}, nil)
	res = e2.call(t, "blocker", map[string]any{"message": "Hold", "run_id": "h-2", "wait_seconds": 0}, nil)
	assert.False(t, res.IsError)
	<-started
	res = e2.call(t, mcp.CancelRunTool, map[string]any{"run_id": "h-2"}, nil)
	assert.False(t, res.IsError, serveTextOf(res))
	assert.Equal(t, "cancel_requested", serveRunOf(t, res).Status)
	res = e2.call(t, mcp.RunResultTool, map[string]any{"run_id": "h-2"}, nil)
	assert.True(t, res.IsError)
	assert.Contains(t, serveTextOf(res), "Run h-2 (agent blocker) was canceled")
	assert.Equal(t, string(backend.StatusCanceled), serveRunOf(t, res).Status)
	res = e2.call(t, mcp.CancelRunTool, map[string]any{"run_id": "h-2"}, nil)
	assert.True(t, res.IsError, "a run that ended cannot be canceled")
	assert.Contains(t, serveTextOf(res), durable.ErrRunEnded.Error())
}

// The Guard sees every call: here it scopes run ids to the caller's
// tenant, sets the input's user, and refuses what is not the caller's.
func TestServeGuard(t *testing.T) {
	var users []string
	var mu sync.Mutex
	model := scripted.Func(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		return providers.Response{Message: providers.Message{Content: "ok"}}, nil
	})
	a := &agent.Agent{Name: "helper", Model: model}
	guard := func(ctx context.Context, c *mcp.ServeCall) error {
		tenant := c.Header.Get("X-Tenant")
		if tenant == "" {
			return errors.New("no tenant")
		}
		if c.Input != nil {
			c.RunID = tenant + "." + c.RunID
			c.Input.User = tenant
			mu.Lock()
			users = append(users, c.Input.User)
			mu.Unlock()
			return nil
		}
		if !strings.HasPrefix(c.RunID, tenant+".") {
			return fmt.Errorf("run %s is not %s's", c.RunID, tenant)
		}
		return nil
	}
	e := newServeEnv(t, mcp.ServeOptions{Agents: []*agent.Agent{a}, Guard: guard}, http.Header{"X-Tenant": {"acme"}})

	res := e.call(t, "helper", map[string]any{"message": "Hi", "run_id": "r1"}, nil)
	assert.False(t, res.IsError, serveTextOf(res))
	assert.Equal(t, "acme.r1", serveRunOf(t, res).RunID, "the client is told the id the run has")
	assert.Equal(t, []string{"acme"}, users)
	res = e.call(t, mcp.RunResultTool, map[string]any{"run_id": "acme.r1"}, nil)
	assert.Equal(t, "ok", serveTextOf(res))

	other := e.connect(t, http.Header{"X-Tenant": {"globex"}})
	res, err := other.CallTool(t.Context(), &sdk.CallToolParams{Name: mcp.RunResultTool, Arguments: map[string]any{"run_id": "acme.r1"}})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Equal(t, "refused: run acme.r1 is not globex's", serveTextOf(res))

	nobody := e.connect(t, nil)
	res, err = nobody.CallTool(t.Context(), &sdk.CallToolParams{Name: "helper", Arguments: map[string]any{"message": "Hi"}})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Equal(t, "refused: no tenant", serveTextOf(res))
}

func TestNewAgentServerErrors(t *testing.T) {
	rt := agent.NewRuntime(inmem.New(), agent.Options{})
	a := &agent.Agent{Name: "a", Model: scripted.New()}
	for _, c := range []struct {
		name string
		rt   *agent.Runtime
		opts mcp.ServeOptions
		want string
	}{
		{"no runtime", nil, mcp.ServeOptions{Agents: []*agent.Agent{a}}, "a runtime is required"},
		{"no agents", rt, mcp.ServeOptions{}, "no agents"},
		{"nil agent", rt, mcp.ServeOptions{Agents: []*agent.Agent{nil}}, "nil agent"},
		{"bad name", rt, mcp.ServeOptions{Agents: []*agent.Agent{{Name: "a b"}}}, `agent "a b": the name must be`},
		{"twice", rt, mcp.ServeOptions{Agents: []*agent.Agent{a, {Name: "a"}}}, "two agents named a"},
		{"built-in name", rt, mcp.ServeOptions{Agents: []*agent.Agent{{Name: mcp.RunResultTool}}}, "the name of a built-in tool"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := mcp.NewAgentServer(c.rt, c.opts)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

// A client of an older protocol version (2025-06-18), speaking raw
// JSON-RPC over HTTP, with no session: its call gets the run's progress
// and its answer on the call's event stream.
func TestServeLegacyClient(t *testing.T) {
	var calls atomic.Int32
	e := newServeEnv(t, mcp.ServeOptions{Agents: []*agent.Agent{serveAnswering("helper", "Hello there.", &calls)}}, nil)
	post := func(body string) []map[string]any {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.web.URL, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Less(t, resp.StatusCode, 300, resp.Status)
		var msgs []map[string]any
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if data, ok := strings.CutPrefix(line, "data: "); ok || strings.HasPrefix(line, "{") {
				if !ok {
					data = line
				}
				var m map[string]any
				require.NoError(t, json.Unmarshal([]byte(data), &m))
				msgs = append(msgs, m)
			}
		}
		return msgs
	}
	hello := post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"old","version":"1"}}}`)
	require.Len(t, hello, 1)
	assert.Equal(t, "2025-06-18", hello[0]["result"].(map[string]any)["protocolVersion"])
	post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)

	msgs := post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"helper","arguments":{"message":"Hi","run_id":"old-1"},"_meta":{"progressToken":"t-1"}}}`)
	require.NotEmpty(t, msgs)
	var progress []string
	for _, m := range msgs[:len(msgs)-1] {
		assert.Equal(t, "notifications/progress", m["method"])
		params := m["params"].(map[string]any)
		assert.Equal(t, "t-1", params["progressToken"])
		progress = append(progress, params["message"].(string))
	}
	assert.Equal(t, "run completed", progress[len(progress)-1])
	last := msgs[len(msgs)-1]
	assert.EqualValues(t, 2, last["id"])
	result := last["result"].(map[string]any)
	assert.Equal(t, "Hello there.", result["content"].([]any)[0].(map[string]any)["text"])
	assert.Equal(t, "completed", result["_meta"].(map[string]any)[mcp.MetaServedRun].(map[string]any)["status"])
}
