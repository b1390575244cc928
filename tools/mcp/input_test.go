package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/internal/syncbuf"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// The protocols a server may ask for input with: in the call's result
// (2026-07-28, multi round-trip requests) or with a request of its own
// while it serves the call (2025-11-25; the go-sdk server turns its
// tool's input requests into such requests for an older client).
var protocols = []string{"", "2025-11-25"}

// desk is an MCP server whose tool book asks the person for a seat
// (elicitation) and the client's model for a blurb (sampling) before it
// books; it records the key and the input of every call.
type desk struct {
	mu     sync.Mutex
	keys   []string
	blurbs []string // the blurb of each call that had one
	// block, if not nil, holds the first call that has its input, after
	// closing started.
	block, started chan struct{}
	// schema is the requested schema (seatSchema by default).
	schema any
}

var seatSchema = map[string]any{"type": "object", "properties": map[string]any{
	"seat": map[string]any{"type": "string", "enum": []any{"aisle", "window"}}}, "required": []any{"seat"}}

func (d *desk) server() *sdk.Server {
	srv := sdk.NewServer(&sdk.Implementation{Name: "desk", Version: "1"}, nil)
	sdk.AddTool(srv, &sdk.Tool{Name: "book", Description: "Book a seat."},
		func(ctx context.Context, req *sdk.CallToolRequest, in struct {
			Flight string `json:"flight"`
		}) (*sdk.CallToolResult, any, error) {
			key, _ := req.Params.Meta[mcp.MetaIdempotencyKey].(string)
			seat, _ := req.Params.InputResponses["seat"].(*sdk.ElicitResult)
			var blurb string
			switch r := req.Params.InputResponses["blurb"].(type) {
			case *sdk.CreateMessageWithToolsResult:
				blurb = r.Content[0].(*sdk.TextContent).Text
			case *sdk.CreateMessageResult:
				blurb = r.Content.(*sdk.TextContent).Text
			}
			d.mu.Lock()
			d.keys = append(d.keys, key)
			if blurb != "" {
				d.blurbs = append(d.blurbs, blurb)
			}
			first := seat != nil && blurb != "" && d.block != nil && len(d.blurbs) == 1
			schema := d.schema
			d.mu.Unlock()
			if seat == nil || blurb == "" {
				if schema == nil {
					schema = seatSchema
				}
				return &sdk.CallToolResult{InputRequests: sdk.InputRequestMap{
					"seat": &sdk.ElicitParams{Message: "Aisle or window on " + in.Flight + "?", RequestedSchema: schema},
					"blurb": &sdk.CreateMessageParams{MaxTokens: 20, SystemPrompt: "sampler",
						Messages: []*sdk.SamplingMessage{{Role: "user", Content: &sdk.TextContent{Text: "Describe " + in.Flight}}}},
				}}, nil, nil
			}
			if first {
				close(d.started)
				<-d.block // the worker that called is killed meanwhile
				return nil, nil, fmt.Errorf("the caller is gone")
			}
			text := fmt.Sprintf("not booked: %s", seat.Action)
			if seat.Action == "accept" {
				text = fmt.Sprintf("booked %v on %s (%s)", seat.Content["seat"], in.Flight, blurb)
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: text}}}, nil, nil
		})
	return srv
}

// deskClient is a client of d's server, which takes both kinds of input,
// asking for protocol version (empty: the newest), closed with the test.
func deskClient(t *testing.T, d *desk, version string) *mcp.Client {
	t.Helper()
	c, err := mcp.NewClient("desk", mcp.InProcess(d.server()), mcp.Options{Elicitation: true, Sampling: true, ProtocolVersion: version})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// deskModel plays turns, and answers the desk's sampling requests (system
// "sampler") with sample(request), counting them.
func deskModel(sample func(providers.Request) string, turns ...providers.Response) (providers.Model, func() int) {
	var mu sync.Mutex
	samples := 0
	return scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
			if req.System == "sampler" {
				mu.Lock()
				samples++
				mu.Unlock()
				return providers.Response{Model: "m", Message: providers.Message{Content: sample(req)}}, nil
			}
			return turns[min(scripted.Turn(req), len(turns)-1)], nil
		}), func() int {
			mu.Lock()
			defer mu.Unlock()
			return samples
		}
}

// TestInputToolCall: a call of a server that asks for input ends with the
// requests (tools.NeedInput), whichever way the server asks; made again
// with the responses, it finishes, with the same idempotency key.
func TestInputToolCall(t *testing.T) {
	for _, version := range protocols {
		t.Run("protocol="+version, func(t *testing.T) {
			d := &desk{}
			c := deskClient(t, d, version)
			set, err := c.Tools(ctxT(t))
			require.NoError(t, err)
			ctx := tools.WithIdempotencyKey(ctxT(t), "key-1")
			var in tools.Input
			for round := 0; ; round++ {
				require.Less(t, round, 4, "rounds")
				res, err := call(t, tools.WithInput(ctx, in), set, "book", `{"flight":"LH1"}`)
				ni, ok := tools.AsNeedsInput(err)
				if !ok {
					require.NoError(t, err)
					assert.Equal(t, "booked window on LH1 (a fine flight)", res.Content)
					break
				}
				in.State = ni.State
				for _, r := range ni.Requests {
					require.NoError(t, r.Check())
					if version == "" {
						assert.Contains(t, []string{"seat", "blurb"}, r.ID, "the server's ids")
					} else {
						assert.Regexp(t, `^(elicit|sample)-[0-9a-f]{16}$`, r.ID, "named by their content")
					}
					switch r.Kind {
					case tools.InputElicitation:
						assert.Equal(t, "Aisle or window on LH1?", r.Message)
						in.Responses = append(in.Responses, tools.InputResponse{ID: r.ID, Action: tools.ActionAccept,
							Content: json.RawMessage(`{"seat":"window"}`), By: "ann"})
					case tools.InputSampling:
						assert.Equal(t, "sampler", r.Sampling.System)
						assert.Equal(t, 20, r.Sampling.Settings.MaxTokens)
						assert.Equal(t, []providers.Message{{Role: providers.RoleUser, Content: "Describe LH1"}}, r.Sampling.Messages)
						in.Responses = append(in.Responses, tools.InputResponse{ID: r.ID,
							Sample: &providers.Response{Model: "m", Message: providers.Message{Content: "a fine flight"}}})
					}
				}
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			for _, k := range d.keys {
				assert.Equal(t, "key-1", k)
			}
		})
	}
}

// TestInputNotDeclared: a client that declares neither elicitation nor
// sampling is not asked: the server's tool fails, and the model reads why.
func TestInputNotDeclared(t *testing.T) {
	d := &desk{}
	c, err := mcp.NewClient("desk", mcp.InProcess(d.server()), mcp.Options{ProtocolVersion: "2025-11-25"})
	require.NoError(t, err)
	defer c.Close()
	set, err := c.Tools(ctxT(t))
	require.NoError(t, err)
	res, err := call(t, ctxT(t), set, "book", `{"flight":"LH1"}`)
	require.NoError(t, err)
	assert.True(t, res.IsError, "%+v", res)
}

// TestInputMalformedSchema: a server asking with a schema that is not one
// of an object: the model reads a clear error, and nobody is asked.
func TestInputMalformedSchema(t *testing.T) {
	for _, version := range protocols {
		t.Run("protocol="+version, func(t *testing.T) {
			c := deskClient(t, &desk{schema: map[string]any{"type": "string"}}, version)
			a := &agent.Agent{Name: "clerk", Model: scripted.New(toolTurn(tc("book", `{"flight":"LH1"}`)), answer("done")),
				Toolsets: []agent.Toolset{c}}
			_, res, h := runAgent(t, a, "malformed", nil)
			msgs := toolMessages(res)
			require.Len(t, msgs, 1)
			assert.Contains(t, msgs[0], "schema")
			t.Log(msgs[0])
			for _, ev := range h {
				assert.NotEqual(t, "question_asked", ev.Name)
			}
		})
	}
}

// deskRun runs an agent that books through d on an in-memory store, with
// a model that answers sampling requests (system "sampler") and counts
// them; respond answers the run's one question.
func deskRun(t *testing.T, c *mcp.Client, runID string, respond func(rt *agent.Runtime, q agent.PendingCall)) (agent.RunResult, []backend.Event, int) {
	t.Helper()
	model, samples := deskModel(func(providers.Request) string { return "a fine flight" },
		toolTurn(tc("book", `{"flight":"LH1"}`)), answer("done"))
	a := &agent.Agent{Name: "clerk", Model: model, Toolsets: []agent.Toolset{c}}
	rt, ctx := working(t, a)
	run, err := rt.Start(ctx, a, runID, agent.Input{Message: "book LH1"})
	require.NoError(t, err)
	respond(rt, oneQuestion(t, ctx, rt, run.ID))
	res, err := run.Result(ctx)
	require.NoError(t, err)
	h, err := run.History(ctx)
	require.NoError(t, err)
	require.NoError(t, durable.ReplayHistory(rt.Workflow(a), h), "replay")
	return res, h, samples()
}

// TestInputAgent: in an agent run, the server's question is a pending
// question with the requested schema, answered with Runtime.Answer (an
// answer that breaks the schema is refused); its sampling request is a
// model call of its own; the tool is called again and finishes.
// Declining reaches the server as declining.
func TestInputAgent(t *testing.T) {
	for _, version := range protocols {
		t.Run("protocol="+version, func(t *testing.T) {
			d := &desk{}
			c := deskClient(t, d, version)
			res, h, samples := deskRun(t, c, "accept", func(rt *agent.Runtime, q agent.PendingCall) {
				assert.Equal(t, "book", q.Tool)
				assert.Equal(t, "Aisle or window on LH1?", q.Question)
				assert.JSONEq(t, `{"type":"object","properties":{"seat":{"type":"string","enum":["aisle","window"]}},"required":["seat"]}`, string(q.Schema))
				err := rt.Answer(ctxT(t), q.RunID, agent.Answer{CallID: q.CallID, By: "ann", Text: `{"seat":"middle"}`})
				require.ErrorIs(t, err, agent.ErrInvalidAnswer)
				require.NoError(t, rt.Answer(ctxT(t), q.RunID, agent.Answer{CallID: q.CallID, By: "ann", Text: `{"seat":"window"}`}))
			})
			assert.Equal(t, []string{"booked window on LH1 (a fine flight)"}, toolMessages(res))
			assert.Equal(t, 1, samples, "sampled once")
			asked := 0
			for _, ev := range h {
				if ev.Name == "question_asked" {
					asked++
				}
			}
			assert.Equal(t, 1, asked, "asked once")
			d.mu.Lock()
			require.NotEmpty(t, d.keys)
			for _, k := range d.keys {
				assert.Equal(t, d.keys[0], k, "one idempotency key for every round")
			}
			d.mu.Unlock()

			for _, action := range []string{tools.ActionDecline, tools.ActionCancel} {
				res, _, _ = deskRun(t, c, action, func(rt *agent.Runtime, q agent.PendingCall) {
					require.NoError(t, rt.Answer(ctxT(t), q.RunID, agent.Answer{CallID: q.CallID, By: "ann", Action: action}))
				})
				assert.Equal(t, []string{"not booked: " + action}, toolMessages(res))
			}
		})
	}
}

// TestEverythingInput: the reference server's elicitation and sampling
// tools (which ask with requests of their own, protocol 2025-11-25), over
// stdio, in an agent run: the person is asked once, with the server's
// schema, and the model samples once.
func TestEverythingInput(t *testing.T) {
	t.Parallel()
	node, script := everything(t)
	var stderr syncbuf.Buffer
	c, err := mcp.NewClient("everything", mcp.CommandFunc(func() *exec.Cmd {
		cmd := exec.Command(node, script, "stdio")
		cmd.Stderr = &stderr
		return cmd
	}), mcp.Options{Elicitation: true, Sampling: true, Allow: []string{"trigger-elicitation-request", "trigger-sampling-request"}})
	require.NoError(t, err)
	defer c.Close()

	var mu sync.Mutex
	samples := 0
	turns := []providers.Response{
		toolTurn(tc("trigger-elicitation-request", `{}`), tc("trigger-sampling-request", `{"prompt":"hello","maxTokens":20}`)),
		answer("done")}
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		if req.System == "You are a helpful test server." {
			mu.Lock()
			samples++
			mu.Unlock()
			return providers.Response{Model: "scripted", Message: providers.Message{Content: "sampled: " + req.Messages[0].Content}}, nil
		}
		return turns[min(scripted.Turn(req), 1)], nil
	})
	a := &agent.Agent{Name: "tester", Model: model, Toolsets: []agent.Toolset{c}}
	rt, ctx := working(t, a)
	run, err := rt.Start(ctx, a, "everything-input", agent.Input{Message: "go"})
	require.NoError(t, err, stderr.String())
	q := oneQuestion(t, ctx, rt, run.ID)
	assert.Equal(t, "Please provide inputs for the following fields:", q.Question)
	assert.Contains(t, string(q.Schema), `"required":["name"]`)
	err = rt.Answer(ctx, run.ID, agent.Answer{CallID: q.CallID, By: "ann", Text: `{"name":"Ann","integer":1000}`})
	require.ErrorIs(t, err, agent.ErrInvalidAnswer, "integer is at most 100")
	require.NoError(t, rt.Answer(ctx, run.ID, agent.Answer{CallID: q.CallID, By: "ann", Text: `{"name":"Ann Example","integer":7}`}))
	res, err := run.Result(ctx)
	require.NoError(t, err, stderr.String())
	msgs := toolMessages(res)
	require.Len(t, msgs, 2)
	assert.Contains(t, msgs[0], "User provided the requested information")
	assert.Contains(t, msgs[0], "- Name: Ann Example")
	assert.Contains(t, msgs[0], "- Favorite Integer: 7")
	assert.Contains(t, msgs[1], "sampled: ")
	assert.Contains(t, msgs[1], "hello")
	mu.Lock()
	assert.Equal(t, 1, samples, "sampled once")
	mu.Unlock()
	h, err := run.History(ctx)
	require.NoError(t, err)
	require.NoError(t, durable.ReplayHistory(rt.Workflow(a), h), "replay")
}

// oneQuestion waits until the run has one pending call, a question, and
// returns it.
func oneQuestion(t *testing.T, ctx context.Context, rt *agent.Runtime, runID string) agent.PendingCall {
	t.Helper()
	var q agent.PendingCall
	require.Eventually(t, func() bool {
		qs, err := rt.Pending(ctx, agent.PendingFilter{RunID: runID})
		if err != nil || len(qs) != 1 {
			return false
		}
		q = qs[0]
		return true
	}, 30*time.Second, 5*time.Millisecond, "the question of run %s", runID)
	require.Equal(t, agent.KindQuestion, q.Kind)
	return q
}

// TestInputTwoCalls: two calls of one turn to a server that asks, each
// with its own question: both questions wait at once, and each answer
// reaches its own call. Before protocol 2026-07-28 the client makes the
// calls one at a time on its session, so that each request of the server
// is attributed to the call it belongs to; from it, they overlap.
func TestInputTwoCalls(t *testing.T) {
	for _, version := range protocols {
		t.Run("protocol="+version, func(t *testing.T) {
			d := &desk{}
			c := deskClient(t, d, version)
			model, _ := deskModel(func(req providers.Request) string { return "blurb of " + req.Messages[0].Content },
				toolTurn(tc("book", `{"flight":"LH1"}`), tc("book", `{"flight":"AF2"}`)), answer("done"))
			a := &agent.Agent{Name: "clerk", Model: model, Toolsets: []agent.Toolset{c}}
			rt, ctx := working(t, a)
			run, err := rt.Start(ctx, a, "two", agent.Input{Message: "book both"})
			require.NoError(t, err)
			var qs []agent.PendingCall
			require.Eventually(t, func() bool {
				qs, err = rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
				return err == nil && len(qs) == 2
			}, 30*time.Second, 5*time.Millisecond, "both questions at once")
			seats := map[string]string{"LH1": "aisle", "AF2": "window"}
			for _, q := range qs {
				flight := strings.TrimSuffix(strings.TrimPrefix(q.Question, "Aisle or window on "), "?")
				require.Contains(t, seats, flight, q.Question)
				require.NoError(t, rt.Answer(ctx, run.ID, agent.Answer{CallID: q.CallID, By: "ann", Text: `{"seat":"` + seats[flight] + `"}`}))
				delete(seats, flight)
			}
			res, err := run.Result(ctx)
			require.NoError(t, err)
			assert.Equal(t, []string{"booked aisle on LH1 (blurb of Describe LH1)", "booked window on AF2 (blurb of Describe AF2)"}, toolMessages(res))
		})
	}
}
