package mcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
)

// Names of the tools an AgentServer offers besides its agents.
const (
	// RunResultTool reads, and waits for, the result of a run by its id.
	RunResultTool = "cairn_run_result"
	// CancelRunTool cancels a run by its id; offered only with
	// ServeOptions.Cancel.
	CancelRunTool = "cairn_cancel_run"
)

// Defaults of ServeOptions.
const (
	// DefaultServeWait is how long a call waits for its run's answer
	// before it answers with the run's id and status instead: below the
	// 60 s after which common MCP clients give up on a request.
	DefaultServeWait = 25 * time.Second
	// DefaultServeMaxWait is the longest wait a client may ask for.
	DefaultServeMaxWait = 5 * time.Minute
)

// MetaServedRun is the key, in the _meta of every result of an AgentServer's
// tools, of a ServedRun: the run's id, agent and status, and what it waits
// for.
const MetaServedRun = "cairn.dev/run"

// ServeOptions configure an AgentServer.
type ServeOptions struct {
	// Agents are the agents offered, each as a tool of its name whose
	// call runs the agent. At least one is required. They need not be
	// registered in this process, only in the workers' (see
	// agent.Runtime.Start).
	Agents []*agent.Agent
	// Name and Version name the server to its clients. Default "cairn".
	Name, Version string
	// Instructions are given to clients when they connect.
	Instructions string
	// Wait is how long a call waits for its run's answer before it
	// answers, without an error, with the run's id and status. Default
	// DefaultServeWait. A call may ask for another wait (wait_seconds),
	// at most MaxWait.
	Wait time.Duration
	// MaxWait caps the wait a call may ask for. Default
	// DefaultServeMaxWait.
	MaxWait time.Duration
	// Cancel offers the tool CancelRunTool, with which a client cancels a
	// run by its id. Without it no client can cancel a run: a request
	// that is canceled, or a client that goes away, stops waiting, never
	// the durable run.
	Cancel bool
	// Guard, if set, sees every tool call before it acts, and refuses it
	// by returning an error, which the client reads as the call's error
	// result. It is where the program that embeds the server authorises
	// (authentication is its HTTP middleware's, around the handler: see
	// AgentServer): it may scope run ids to the caller by changing
	// ServeCall.RunID when a run starts and checking it on the other
	// calls, and set the input's User from the caller's identity. It must
	// be safe for concurrent use.
	Guard func(ctx context.Context, call *ServeCall) error
	// HTTP configures the streamable HTTP transport. Default: stateless
	// (every request stands alone, so any process that shares the
	// runtime's store serves any request; clients of protocol versions
	// before 2026-07-28 are served too), answers streamed as server-sent
	// events so that progress reaches the client, and a call's wait ended
	// when its HTTP request is (PropagateRequestCancellation).
	HTTP *sdk.StreamableHTTPOptions
	// Logger receives the server's logs. Default: slog.Default().
	Logger *slog.Logger
}

// ServeCall is a tool call as ServeOptions.Guard sees it.
type ServeCall struct {
	// Tool is the tool called: an agent's name, RunResultTool or
	// CancelRunTool.
	Tool string
	// Agent is the agent a call of its tool runs; nil for the other
	// tools.
	Agent *agent.Agent
	// RunID is the run the call starts, attaches to, reads or cancels.
	// When a call starts a run, Guard may change it (to scope ids to a
	// tenant); the client is told the id the run has.
	RunID string
	// Input is what a call of an agent's tool starts its run with; Guard
	// may change it (set User, pin facts). Nil for the other tools.
	Input *agent.Input
	// Header is the HTTP request's header, and TokenInfo what the SDK's
	// auth middleware (auth.RequireBearerToken) verified, if any.
	Header    http.Header
	TokenInfo *auth.TokenInfo
}

// ServedRun describes a run in the results of an AgentServer's tools (in
// their _meta, under MetaServedRun).
type ServedRun struct {
	RunID string `json:"run_id"`
	Agent string `json:"agent"`
	// Status is the run's (a backend.Status), or "cancel_requested" in
	// CancelRunTool's answer.
	Status string `json:"status"`
	// Waiting says what a run that has not ended waits for; Error why a
	// run failed, was canceled or is parked.
	Waiting string `json:"waiting,omitempty"`
	Error   string `json:"error,omitempty"`
	// Pending are the calls the run waits on a person for: approvals and
	// questions (see agent.Runtime.Pending).
	Pending []agent.PendingCall `json:"pending,omitempty"`
}

// AgentServer serves agents of a Runtime as MCP tools, over streamable
// HTTP (it is an http.Handler) or any other MCP transport (MCPServer).
//
// A call of an agent's tool starts a durable run of the agent with the
// call's message, or attaches to the run of the same id if it exists
// (so a retried request with the same run_id starts no second run), and
// waits for the run's answer: its text, and its structured output as
// structuredContent when the agent has an Output type. (The tool declares
// no output schema: an answer that is the run's status has no structured
// content, which clients that check the schema would refuse.) If the client asked
// for progress (a progressToken), the run's live events are sent as
// progress notifications while it waits. A run that takes longer than the
// wait is not an error: the call answers with the run's id and status,
// including the approvals and questions it waits on, and RunResultTool
// waits for its result by id, from any process that serves the same
// store. A run that failed or was canceled is an error result saying
// why. A canceled request, or a client that goes away, stops the wait,
// never the run: it goes on, and its result stays readable by its id.
// Bad arguments are error results saying what is wrong.
//
// The server authenticates no one: wrap it in the HTTP middleware of the
// program that mounts it (auth.RequireBearerToken, a session check), and
// authorise calls with ServeOptions.Guard. Every client that reaches it
// may run the agents it offers and read any of their runs by id. No
// process needs to run a worker to serve: the runs are executed by the
// workers of the runtime's store, wherever they are.
//
// An AgentServer is safe for concurrent use.
type AgentServer struct {
	rt      *agent.Runtime
	opts    ServeOptions
	agents  map[string]*agent.Agent
	server  *sdk.Server
	handler http.Handler
	log     *slog.Logger
}

var _ http.Handler = (*AgentServer)(nil)

// NewAgentServer returns a server of the agents in opts, whose runs it
// starts and reads through rt.
func NewAgentServer(rt *agent.Runtime, opts ServeOptions) (*AgentServer, error) {
	if rt == nil {
		return nil, errors.New("mcp: serve: a runtime is required")
	}
	if len(opts.Agents) == 0 {
		return nil, errors.New("mcp: serve: no agents to serve")
	}
	if opts.Name == "" {
		opts.Name = "cairn"
	}
	if opts.Wait <= 0 {
		opts.Wait = DefaultServeWait
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = DefaultServeMaxWait
	}
	opts.MaxWait = max(opts.MaxWait, opts.Wait)
	s := &AgentServer{rt: rt, opts: opts, agents: map[string]*agent.Agent{}, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.server = sdk.NewServer(&sdk.Implementation{Name: opts.Name, Version: opts.Version},
		&sdk.ServerOptions{Instructions: opts.Instructions, Logger: opts.Logger})
	for _, a := range opts.Agents {
		if a == nil {
			return nil, errors.New("mcp: serve: nil agent")
		}
		if !serveAgentName.MatchString(a.Name) {
			return nil, fmt.Errorf("mcp: serve: agent %q: the name must be 1 to 64 letters, digits, '_' or '-'", a.Name)
		}
		if a.Name == RunResultTool || a.Name == CancelRunTool {
			return nil, fmt.Errorf("mcp: serve: agent %s has the name of a built-in tool", a.Name)
		}
		if _, ok := s.agents[a.Name]; ok {
			return nil, fmt.Errorf("mcp: serve: two agents named %s", a.Name)
		}
		s.agents[a.Name] = a
		s.server.AddTool(s.agentTool(a), s.callAgent(a))
	}
	s.server.AddTool(s.resultTool(), s.callResult)
	if opts.Cancel {
		s.server.AddTool(s.cancelTool(), s.callCancel)
	}
	httpOpts := opts.HTTP
	if httpOpts == nil {
		httpOpts = &sdk.StreamableHTTPOptions{Stateless: true, PropagateRequestCancellation: true, Logger: opts.Logger}
	}
	s.handler = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s.server }, httpOpts)
	return s, nil
}

// ServeHTTP serves MCP over streamable HTTP.
func (s *AgentServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// MCPServer returns the MCP server, to serve it over another transport:
// s.MCPServer().Run(ctx, &mcp.StdioTransport{}).
func (s *AgentServer) MCPServer() *sdk.Server { return s.server }

// The arguments of the tools.
type (
	serveAgentArgs struct {
		Message     string   `json:"message"`
		RunID       string   `json:"run_id"`
		WaitSeconds *float64 `json:"wait_seconds"`
	}
	serveRunArgs struct {
		RunID       string   `json:"run_id"`
		WaitSeconds *float64 `json:"wait_seconds"`
	}
)

func (s *AgentServer) agentTool(a *agent.Agent) *sdk.Tool {
	desc := a.Description
	if desc == "" {
		desc = "Runs the agent " + a.Name + "."
	}
	desc += fmt.Sprintf(" The run is durable: if it has not answered within the wait, the result gives its run_id and status, and %s waits for its answer.", RunResultTool)
	return &sdk.Tool{
		Name:        a.Name,
		Description: desc,
		InputSchema: json.RawMessage(`{"type":"object","properties":{` +
			`"message":{"type":"string","minLength":1,"description":"What to ask the agent."},` +
			`"run_id":` + serveRunIDSchema(`Optional id of the run, chosen by you: a call with the run_id of a run that exists (with the same message) does not start another, it waits for that run, so a retry is safe. Default: a new id, given in the result.`) + `,` +
			`"wait_seconds":` + s.waitSchema() +
			`},"required":["message"],"additionalProperties":false}`),
	}
}

func (s *AgentServer) resultTool() *sdk.Tool {
	return &sdk.Tool{
		Name:        RunResultTool,
		Description: "Waits for the answer of an agent run by its run_id, and returns it; if the run has not answered within the wait, returns its status and what it waits for (approvals, questions).",
		InputSchema: json.RawMessage(`{"type":"object","properties":{` +
			`"run_id":` + serveRunIDSchema(`The id of the run.`) + `,` +
			`"wait_seconds":` + s.waitSchema() +
			`},"required":["run_id"],"additionalProperties":false}`),
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
	}
}

func (s *AgentServer) cancelTool() *sdk.Tool {
	destructive := true
	return &sdk.Tool{
		Name:        CancelRunTool,
		Description: "Cancels an agent run by its run_id: the run stops at its next step, and its result is canceled.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{` +
			`"run_id":` + serveRunIDSchema(`The id of the run.`) +
			`},"required":["run_id"],"additionalProperties":false}`),
		Annotations: &sdk.ToolAnnotations{DestructiveHint: &destructive, IdempotentHint: true},
	}
}

// serveAgentName is what an agent's name is (agent.Agent.Name), and so
// its tool's.
var serveAgentName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// serveRunIDPattern is what a run id a client gives may be: it names Redis
// keys (inside a hash tag, so no braces) and may not look like a child
// run's id (no slash).
var serveRunIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$`)

func serveRunIDSchema(desc string) string {
	schema, _ := json.Marshal(map[string]string{"type": "string", "pattern": serveRunIDPattern.String(), "description": desc})
	return string(schema)
}

func (s *AgentServer) waitSchema() string {
	return fmt.Sprintf(`{"type":"number","minimum":0,"description":"How long to wait for the answer, in seconds, before returning the run's status instead (default %g, at most %g)."}`,
		s.opts.Wait.Seconds(), s.opts.MaxWait.Seconds())
}

// serveDecodeArgs decodes a call's arguments strictly: unknown fields, and
// anything but one JSON object, are errors.
func serveDecodeArgs(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid arguments: %w", err)
	}
	if dec.More() {
		return errors.New("invalid arguments: more than one JSON value")
	}
	return nil
}

// wait is the wait a call asked for, within bounds.
func (s *AgentServer) wait(seconds *float64) (time.Duration, error) {
	if seconds == nil {
		return s.opts.Wait, nil
	}
	if *seconds < 0 {
		return 0, errors.New("invalid arguments: wait_seconds is negative")
	}
	if *seconds >= s.opts.MaxWait.Seconds() {
		return s.opts.MaxWait, nil
	}
	return time.Duration(*seconds * float64(time.Second)), nil
}

func serveCheckRunID(id string) error {
	if !serveRunIDPattern.MatchString(id) {
		return fmt.Errorf("invalid arguments: run_id %q must be 1 to 128 letters, digits, '_', '.', ':', '@' or '-', starting with a letter or digit", id)
	}
	return nil
}

// serveNewRunID is the id of a run a call starts without choosing one: derived
// from the request's idempotency key if it has one, else random.
func serveNewRunID(a *agent.Agent, meta sdk.Meta) string {
	if key, ok := meta[MetaIdempotencyKey].(string); ok && key != "" {
		sum := sha256.Sum256([]byte(a.Name + "\x00" + key))
		return "mcp-" + hex.EncodeToString(sum[:16])
	}
	return "mcp-" + rand.Text()
}

// guard asks ServeOptions.Guard about a call.
func (s *AgentServer) guard(ctx context.Context, req *sdk.CallToolRequest, call *ServeCall) error {
	if s.opts.Guard == nil {
		return nil
	}
	if req.Extra != nil {
		call.Header, call.TokenInfo = req.Extra.Header, req.Extra.TokenInfo
	}
	if err := s.opts.Guard(ctx, call); err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	return nil
}

// callAgent handles a call of agent a's tool: start or attach, then wait.
func (s *AgentServer) callAgent(a *agent.Agent) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		var args serveAgentArgs
		if err := serveDecodeArgs(req.Params.Arguments, &args); err != nil {
			return serveError(nil, err.Error()), nil
		}
		if args.Message == "" {
			return serveError(nil, "invalid arguments: message is required"), nil
		}
		wait, err := s.wait(args.WaitSeconds)
		if err != nil {
			return serveError(nil, err.Error()), nil
		}
		if args.RunID == "" {
			args.RunID = serveNewRunID(a, req.Params.Meta)
		} else if err := serveCheckRunID(args.RunID); err != nil {
			return serveError(nil, err.Error()), nil
		}
		call := &ServeCall{Tool: a.Name, Agent: a, RunID: args.RunID, Input: &agent.Input{Message: args.Message}}
		if err := s.guard(ctx, req, call); err != nil {
			return serveError(nil, err.Error()), nil
		}
		if _, err := s.rt.Start(ctx, a, call.RunID, *call.Input); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return serveError(&ServedRun{RunID: call.RunID, Agent: a.Name},
				fmt.Sprintf("start run %s: %v", call.RunID, err)), nil
		}
		return s.await(ctx, req, call.RunID, a.Name, wait)
	}
}

// callResult handles a call of RunResultTool.
func (s *AgentServer) callResult(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	var args serveRunArgs
	if err := serveDecodeArgs(req.Params.Arguments, &args); err != nil {
		return serveError(nil, err.Error()), nil
	}
	if err := serveCheckRunID(args.RunID); err != nil {
		return serveError(nil, err.Error()), nil
	}
	wait, err := s.wait(args.WaitSeconds)
	if err != nil {
		return serveError(nil, err.Error()), nil
	}
	call := &ServeCall{Tool: RunResultTool, RunID: args.RunID}
	if err := s.guard(ctx, req, call); err != nil {
		return serveError(nil, err.Error()), nil
	}
	name, res := s.servedRun(ctx, call.RunID)
	if res != nil {
		return res, nil
	}
	return s.await(ctx, req, call.RunID, name, wait)
}

// callCancel handles a call of CancelRunTool.
func (s *AgentServer) callCancel(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	var args serveRunArgs
	if err := serveDecodeArgs(req.Params.Arguments, &args); err != nil {
		return serveError(nil, err.Error()), nil
	}
	if args.WaitSeconds != nil {
		return serveError(nil, "invalid arguments: unknown field \"wait_seconds\""), nil
	}
	if err := serveCheckRunID(args.RunID); err != nil {
		return serveError(nil, err.Error()), nil
	}
	call := &ServeCall{Tool: CancelRunTool, RunID: args.RunID}
	if err := s.guard(ctx, req, call); err != nil {
		return serveError(nil, err.Error()), nil
	}
	name, res := s.servedRun(ctx, call.RunID)
	if res != nil {
		return res, nil
	}
	if err := s.rt.Client().Cancel(ctx, call.RunID); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return serveError(&ServedRun{RunID: call.RunID, Agent: name}, fmt.Sprintf("cancel run %s: %v", call.RunID, err)), nil
	}
	run := &ServedRun{RunID: call.RunID, Agent: name, Status: "cancel_requested"}
	return serveText(run, fmt.Sprintf("Run %s (agent %s) was asked to cancel; %s gives its outcome.", call.RunID, name, RunResultTool)), nil
}

// servedRun returns the agent of run id, or, if there is no such run of a
// served agent, the error result that says so.
func (s *AgentServer) servedRun(ctx context.Context, id string) (string, *sdk.CallToolResult) {
	info, err := s.rt.Client().Describe(ctx, id)
	if err != nil && !errors.Is(err, backend.ErrRunNotFound) {
		return "", serveError(&ServedRun{RunID: id}, fmt.Sprintf("read run %s: %v", id, err))
	}
	if _, ok := s.agents[info.Workflow]; err != nil || !ok {
		// Runs of other workflows are not the server's to show.
		return "", serveError(&ServedRun{RunID: id}, fmt.Sprintf("no run %s", id))
	}
	return info.Workflow, nil
}
