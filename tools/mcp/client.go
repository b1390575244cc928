package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/tools"
)

// MetaIdempotencyKey is the key, in a tools/call request's _meta, of the
// call's idempotency key (tools.IdempotencyKey): the same for every attempt
// of one call of the model, across retries, reconnects and crashed
// workers. A server that keeps what it did by this key can answer a
// repeated call without doing it twice (declare it with
// Options.HonorsIdempotencyKey).
//
// An AgentServer takes it as the call's idempotency key when the call's
// arguments choose no run id: calls of an agent with the same key name the
// same run, so a cairn agent that calls a served agent and is retried
// after a crash waits for the same run. MCP has no standard key for it yet
// (SEP-3182 proposed one); a run_id argument is the portable way.
const MetaIdempotencyKey = "cairn.dev/idempotency-key"

// DefaultTimeout bounds a tool call when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// Options configure a Client. The zero value offers every tool of the
// server under its own name.
type Options struct {
	// Allow, if not empty, lists the server's tools to offer (by their
	// names on the server); the others are left out.
	Allow []string
	// Deny lists server tools not to offer.
	Deny []string
	// Prefix is put before the name of every tool offered, so that two
	// servers' tools cannot clash: "github_" offers create_issue as
	// github_create_issue.
	Prefix string
	// Rename offers tools under other names (server name to name
	// offered, taking the place of Prefix). A tool whose name is not a
	// valid cairn tool name (1 to 64 letters, digits, '_' or '-') is
	// left out, with a warning, unless renamed.
	Rename map[string]string
	// RequireApproval lists the tools (by the names offered) each of
	// whose calls waits for a person's approval; "*" means all.
	RequireApproval []string
	// Timeout bounds one call of a tool: past it, the server is told
	// the call is canceled and the attempt fails (it is retried per
	// Retry). Default DefaultTimeout.
	Timeout time.Duration
	// Retry is the retry policy of every tool's calls (tools.Retry):
	// attempts that fail because the connection dropped, the server
	// did not answer in time or the call was canceled are retried,
	// after a reconnect.
	Retry durable.RetryPolicy
	// MaxResultBytes truncates results, as for any tool. Default
	// tools.DefaultMaxResultBytes.
	MaxResultBytes int
	// HonorsIdempotencyKey declares that the server does a call once
	// per MetaIdempotencyKey (see tools.HonorsIdempotencyKey).
	HonorsIdempotencyKey bool
	// Logger receives the client's warnings. Default slog.Default().
	Logger *slog.Logger
	// Elicitation declares that the client takes the server's
	// elicitation requests (a server asking the person behind the client
	// to fill a form, or visit a URL, while it serves a call): the call's
	// attempt ends with the request (tools.NeedInput), the agent run puts
	// it to a person as a pending question with the requested schema
	// (agent.Runtime.Pending, Answer, `cairn answer`), and calls the tool
	// again with the answer, which the client gives the server when it
	// asks again. False: the client does not declare elicitation, and
	// servers do not ask.
	Elicitation bool
	// Sampling declares that the client serves the server's sampling
	// requests (sampling/createMessage: a server asking the client's
	// model for a completion while it serves a call): the call's attempt
	// ends with the request, the agent run has its model complete it, in
	// an activity of its own (journaled: a call made again after a crash
	// gets the recorded completion, and the model is not called twice),
	// and calls the tool again with the completion. The request's
	// messages (text, other content as references), system prompt, token
	// cap, temperature and stop sequences are passed on. False: the
	// client does not declare sampling, and servers do not ask.
	Sampling bool
	// ProtocolVersion, if set, is the MCP protocol version the client
	// asks for instead of the newest the SDK speaks (the server may
	// answer with an older one). With Elicitation or Sampling, it
	// decides how a server asks (see the package doc).
	ProtocolVersion string
}

// Client is a connection to one MCP server that offers the server's tools
// as cairn tools: Tools returns them as a *tools.Set, so a Client is an
// agent.Toolset. It connects when first asked, lists the server's tools
// and keeps the list until the server says it changed
// (notifications/tools/list_changed) or the connection drops; it
// reconnects, and initialises again, when the next call needs it.
//
// Every call of one of its tools sends the model's arguments, checked
// against the server's schema, with the call's idempotency key in _meta
// (MetaIdempotencyKey) and a progress token; progress notifications are
// reported with tools.ReportProgress (a heartbeat, and a live event in an
// agent run). What the server returns is turned into text for the model
// (see Render). A result with isError is a result the model reads as the
// tool's error; an error response of the server (an unknown tool, bad
// parameters) too. A dropped connection, a response that cannot be read
// (after which the client reconnects), a timeout and a canceled call are
// failed attempts, retried per Options.Retry; once they run out the model
// reads that the tool failed.
//
// A Client is safe for concurrent use. Close it when done.
type Client struct {
	name      string
	transport Transport
	opts      Options
	log       *slog.Logger
	sdk       *sdk.Client

	mu   sync.Mutex
	conn *connection // nil: not connected
	set  *tools.Set  // the tools of conn; nil: to list
	// closed is set by Close: no new connection is made.
	closed bool

	progress sync.Map // progress token (string) -> func(tools.Progress)
	tokens   atomic.Int64
	// sessions finds the connection of a session that sends a request,
	// without c.mu (held while a session closes).
	sessions sync.Map // *sdk.ClientSession -> *connection
}

// connection is one session with the server.
type connection struct {
	session *sdk.ClientSession
	done    chan struct{} // closed when the session ends
	// slot, if not nil, lets one call at a time be in flight on the
	// session (elicitation or sampling declared, protocol before
	// 2026-07-28): current, to which the server's requests are
	// attributed.
	slot    chan struct{}
	mu      sync.Mutex
	current *inflight
}

// enter waits for the session's slot, if it has one, and makes f the call
// in flight; leave undoes it.
func (c *connection) enter(ctx context.Context, f *inflight) (leave func(), err error) {
	if c.slot == nil {
		return func() {}, nil
	}
	select {
	case c.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	c.mu.Lock()
	c.current = f
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.current = nil
		c.mu.Unlock()
		<-c.slot
	}, nil
}

func (c *connection) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// NewClient returns a client of the server that transport reaches. name
// names the server in cairn (1 to 64 letters, digits, '_' or '-'): it is
// the name of the toolset (Name), and appears in errors the model reads.
// It does not connect yet.
func NewClient(name string, transport Transport, opts Options) (*Client, error) {
	if _, err := tools.NewNamedSet(name); err != nil {
		return nil, fmt.Errorf("mcp: client: %w", err)
	}
	if transport == nil {
		return nil, fmt.Errorf("mcp %s: nil transport", name)
	}
	if opts.Timeout < 0 || opts.MaxResultBytes < 0 {
		return nil, fmt.Errorf("mcp %s: negative timeout or result size", name)
	}
	c := &Client{name: name, transport: transport, opts: opts, log: opts.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("mcp_server", name)
	sdkOpts := &sdk.ClientOptions{
		Logger:                      c.log,
		ToolListChangedHandler:      func(context.Context, *sdk.ToolListChangedRequest) { c.toolsChanged() },
		ProgressNotificationHandler: c.onProgress,
		// An input_required result ends the attempt: the agent run
		// gets the input, durably, and calls again.
		MultiRoundTrip: &sdk.MultiRoundTripOptions{Disabled: true},
	}
	if opts.Elicitation {
		sdkOpts.ElicitationHandler = c.onElicit
	}
	if opts.Sampling {
		sdkOpts.CreateMessageHandler = c.onSample
	}
	c.sdk = sdk.NewClient(&sdk.Implementation{Name: "cairn", Version: "1"}, sdkOpts)
	return c, nil
}

// Name returns the server's name in cairn.
func (c *Client) Name() string { return c.name }

// Tools returns the server's tools, filtered and renamed per the Options,
// connecting and listing them if needed. A tool whose schema cannot be
// compiled is left out, with a warning.
func (c *Client) Tools(ctx context.Context) (*tools.Set, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set != nil && c.conn != nil && c.conn.alive() {
		return c.set, nil
	}
	conn, err := c.connectLocked(ctx)
	if err != nil {
		return nil, err
	}
	var list []*sdk.Tool
	for t, err := range conn.session.Tools(ctx, nil) {
		if err != nil {
			c.dropLocked(conn)
			return nil, fmt.Errorf("mcp %s: list tools: %w", c.name, err)
		}
		list = append(list, t)
	}
	set, err := c.toolSet(list)
	if err != nil {
		return nil, err
	}
	c.set = set
	return set, nil
}

// toolSet makes the cairn tools of the server's.
func (c *Client) toolSet(list []*sdk.Tool) (*tools.Set, error) {
	var out []*tools.Tool
	for _, t := range list {
		if t == nil || !c.allowed(t.Name) {
			continue
		}
		name, ok := c.opts.Rename[t.Name]
		if !ok {
			name = c.opts.Prefix + t.Name
		}
		schema, err := json.Marshal(t.InputSchema)
		if err != nil {
			c.log.Warn("mcp tool left out: its input schema does not encode", "tool", t.Name, "err", err)
			continue
		}
		opts := []tools.Option{tools.Timeout(cmpOr(c.opts.Timeout, DefaultTimeout)), tools.Retry(c.opts.Retry)}
		if c.opts.MaxResultBytes > 0 {
			opts = append(opts, tools.MaxResultBytes(c.opts.MaxResultBytes))
		}
		if c.opts.HonorsIdempotencyKey {
			opts = append(opts, tools.HonorsIdempotencyKey())
		}
		if slices.Contains(c.opts.RequireApproval, "*") || slices.Contains(c.opts.RequireApproval, name) {
			opts = append(opts, tools.RequireApproval())
		}
		description := t.Description
		if description == "" {
			description = t.Title
		}
		tool, err := tools.NewRaw(name, description, schema, c.call(t.Name), opts...)
		if err != nil {
			c.log.Warn("mcp tool left out", "tool", t.Name, "err", err)
			continue
		}
		out = append(out, tool)
	}
	set, err := tools.NewNamedSet(c.name, out...)
	if err != nil {
		// Two server tools renamed alike, or a bad server name.
		return nil, fmt.Errorf("mcp %s: %w", c.name, err)
	}
	return set, nil
}

func (c *Client) allowed(name string) bool {
	if len(c.opts.Allow) > 0 && !slices.Contains(c.opts.Allow, name) {
		return false
	}
	return !slices.Contains(c.opts.Deny, name)
}

// connectLocked returns the live connection, making one if there is none.
func (c *Client) connectLocked(ctx context.Context) (*connection, error) {
	if c.closed {
		return nil, fmt.Errorf("mcp %s: %w", c.name, ErrClosed)
	}
	if c.conn != nil && c.conn.alive() {
		return c.conn, nil
	}
	if c.conn != nil {
		c.dropLocked(c.conn)
	}
	t, err := c.transport(ctx)
	if err != nil {
		return nil, fmt.Errorf("mcp %s: connect: %w", c.name, err)
	}
	session, err := c.sdk.Connect(ctx, t, &sdk.ClientSessionOptions{ProtocolVersion: c.opts.ProtocolVersion})
	if err != nil {
		return nil, fmt.Errorf("mcp %s: connect: %w", c.name, err)
	}
	conn := &connection{session: session, done: make(chan struct{})}
	if (c.opts.Elicitation || c.opts.Sampling) && !multiRoundTrip(session) {
		conn.slot = make(chan struct{}, 1)
	}
	c.sessions.Store(session, conn)
	go func() {
		_ = session.Wait()
		close(conn.done)
	}()
	c.conn, c.set = conn, nil
	return conn, nil
}

// dropLocked closes conn and forgets it, if it is the client's.
func (c *Client) dropLocked(conn *connection) {
	c.sessions.Delete(conn.session)
	_ = conn.session.Close()
	if c.conn == conn {
		c.conn, c.set = nil, nil
	}
}

// retire forgets conn, if it is the client's, and closes it in the
// background: closing a process's session waits for the process to end.
func (c *Client) retire(conn *connection) {
	c.mu.Lock()
	c.sessions.Delete(conn.session)
	if c.conn == conn {
		c.conn, c.set = nil, nil
	}
	c.mu.Unlock()
	go func() { _ = conn.session.Close() }()
}

// drop is dropLocked for callers without the lock.
func (c *Client) drop(conn *connection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(conn)
}

// session returns a live connection, connecting if needed.
func (c *Client) connection(ctx context.Context) (*connection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connectLocked(ctx)
}

// toolsChanged forgets the tool list: the next Tools lists them again.
func (c *Client) toolsChanged() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set = nil
}

// Close closes the connection, if any; calls in flight fail. The Client
// connects no more.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn == nil {
		return nil
	}
	c.sessions.Delete(c.conn.session)
	err := c.conn.session.Close()
	c.conn, c.set = nil, nil
	return err
}

// ErrClosed means the Client was closed.
var ErrClosed = errors.New("client closed")

// call returns the function of the cairn tool for the server's tool name.
func (c *Client) call(name string) tools.RawFunc {
	return func(ctx context.Context, args json.RawMessage) (tools.Result, error) {
		params := &sdk.CallToolParams{Name: name, Arguments: args, Meta: sdk.Meta{}}
		if key, ok := tools.IdempotencyKey(ctx); ok {
			params.Meta[MetaIdempotencyKey] = key
		}
		in, _ := tools.InputFrom(ctx)
		if in.State != "" {
			// A call made again after input_required.
			var err error
			if params.InputResponses, params.RequestState, err = inputResponses(in); err != nil {
				return tools.Result{}, fmt.Errorf("mcp %s: call %s: %w", c.name, name, err)
			}
		}
		token := c.name + "-" + strconv.FormatInt(c.tokens.Add(1), 10)
		params.SetProgressToken(token)
		c.progress.Store(token, func(p tools.Progress) { tools.ReportProgress(ctx, p) })
		defer c.progress.Delete(token)

		callCtx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		f := &inflight{in: in, cancel: cancel}
		conn, leave, err := c.enter(ctx, f)
		if err != nil {
			return tools.Result{}, err
		}
		defer leave()
		res, err := conn.session.CallTool(callCtx, params)
		if needs := f.needs(); len(needs) > 0 {
			// The server asked while it served the call, and was
			// refused: the call is made again with the answers. The
			// session goes: a request the server sends late, for
			// this call, must not reach the next one.
			c.retire(conn)
			return tools.Result{}, tools.NeedInput("", needs...)
		}
		if err != nil {
			return tools.Result{}, c.callError(ctx, conn, name, err)
		}
		if res.NeedsInput() {
			return tools.Result{}, needInput(res)
		}
		return Render(res), nil
	}
}

// enter returns a live connection on which f is the call in flight (see
// connection.enter), connecting if needed; leave ends f's turn.
func (c *Client) enter(ctx context.Context, f *inflight) (_ *connection, leave func(), _ error) {
	for {
		conn, err := c.connection(ctx)
		if err != nil {
			return nil, nil, tools.Retryable(err)
		}
		leave, err := conn.enter(ctx, f)
		if err != nil {
			return nil, nil, err
		}
		c.mu.Lock()
		current := c.conn == conn
		c.mu.Unlock()
		if current {
			return conn, leave, nil
		}
		leave() // dropped while this call waited its turn: connect again
	}
}

// inflightOn returns the call in flight on session, if any.
func (c *Client) inflightOn(session *sdk.ClientSession) *inflight {
	v, ok := c.sessions.Load(session)
	if !ok {
		return nil // a session dropped, or not this client's
	}
	conn := v.(*connection)
	conn.mu.Lock()
	defer conn.mu.Unlock()
	return conn.current
}

// multiRoundTrip reports whether the session speaks protocol 2026-07-28 or
// later, where a server asks for input in a call's result, never with a
// request of its own.
func multiRoundTrip(s *sdk.ClientSession) bool {
	res := s.InitializeResult()
	return res != nil && res.ProtocolVersion >= "2026-07-28"
}

// callError sorts what went wrong with a call: an error response of the
// server is the tool's error, for the model; a dropped connection is a
// failed attempt, after which the next one reconnects; a canceled or timed
// out call is the context's.
func (c *Client) callError(ctx context.Context, conn *connection, name string, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var rpc *jsonrpc.Error
	if errors.As(err, &rpc) {
		// The server answered, with an error: the model reads it.
		return fmt.Errorf("the server %s refused the call of %s: %s (code %d)", c.name, name, rpc.Message, rpc.Code)
	}
	if errors.Is(err, sdk.ErrConnectionClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || !conn.alive() {
		c.drop(conn)
		return tools.Retryable(fmt.Errorf("mcp %s: call %s: the connection dropped: %w", c.name, name, err))
	}
	// Anything else (a response that does not decode) leaves the
	// connection in doubt: start afresh, and try again.
	c.drop(conn)
	return tools.Retryable(fmt.Errorf("mcp %s: call %s: the server's response could not be read: %w", c.name, name, err))
}

// onProgress passes a progress notification to the call it belongs to.
func (c *Client) onProgress(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
	if req == nil || req.Params == nil {
		return
	}
	token, ok := req.Params.ProgressToken.(string)
	if !ok {
		return
	}
	if fn, ok := c.progress.Load(token); ok {
		fn.(func(tools.Progress))(tools.Progress{Progress: req.Params.Progress, Total: req.Params.Total,
			Message: req.Params.Message})
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
