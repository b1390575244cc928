// Package mcp connects cairn to the Model Context Protocol, both ways,
// with the official go-sdk (github.com/modelcontextprotocol/go-sdk).
//
// Client (client.go) offers an MCP server's tools to an agent. It speaks
// to a server run as a process over stdio (Command), to one over
// streamable HTTP with headers for its authentication (StreamableHTTP), or
// to a go-sdk server in the same process (InProcess); it lists the
// server's tools and gives them as a *tools.Set whose schemas are the
// server's, checked like any cairn tool's (tools.NewRaw). Options filter
// them (Allow, Deny), rename them so that two servers cannot clash
// (Prefix, Rename), and pick those whose calls wait for a person's
// approval (RequireApproval).
//
// A Client is an agent.Toolset: put it in Agent.Toolsets, and each run
// records the server's tool list once, in its history, with a hash (see
// agent.Toolset); replay and the run's later turns show the model that
// list, and a server whose tools changed is picked up by the next run or
// conversation generation. Each tool call is an activity like any other:
// journaled, never made again once completed, made again with the same
// idempotency key (sent in the request's _meta, MetaIdempotencyKey) when a
// worker died during it, and retried after a dropped connection (the
// Client reconnects and initialises again) or a timeout (the server is
// told the call is canceled). Progress notifications become heartbeats
// and live events (tools.ReportProgress); results become text for the
// model (Render), truncated as other tools' are; a result with isError is
// the tool's error, which the model reads.
//
// # Elicitation and sampling
//
// A server may ask, while it serves a call, for input: a person's answer
// (elicitation: a form, with a JSON Schema of the object to fill, or a URL
// to visit) or a completion of the client's model (sampling). A Client
// declares what it takes with Options.Elicitation and Options.Sampling,
// and never waits for the input inside the call, which would hold a
// worker for as long as a person takes: the call's attempt ends with the
// requests (tools.NeedInput), journaled as the activity's result, not as a
// failure. An agent run gets the input durably (package agent:
// a question is a pending question, listed by Runtime.Pending and answered
// with Runtime.Answer or `cairn answer`, checked against the schema; a
// sampling request is a call of the agent's model, an activity of its
// own, "sample:<agent>"), then calls the tool again (a new step) with the same idempotency
// key and every response so far in its context (tools.InputFrom). The
// server learns the answers according to its protocol version:
//
//   - 2026-07-28 and later (multi round-trip requests, SEP-2322): the
//     server asks in the call's result (input_required, inputRequests, a
//     requestState). The requests are the call's own, exactly; the call
//     made again sends the responses of the last round under the server's
//     ids, with its requestState. Calls on one session run concurrently.
//     The go-sdk's own loop, which would fulfil the requests within the
//     attempt, is turned off.
//   - Before it, the server sends a request of its own (elicitation/create,
//     sampling/createMessage) while the call runs, and MCP gives it no
//     reference to the call. The Client attributes it to the one call in
//     flight on the session: while it declares elicitation or sampling, it
//     makes one call at a time on such a session (the calls of one turn to
//     this server wait their turn, each within its own Timeout; use two
//     Clients for calls that must overlap). A request it has a recorded
//     response for (the same message and schema, or the same sampling
//     request: it is named by a hash of its content) is answered at once;
//     another one ends the attempt: the Client refuses it with an error,
//     cancels the call (the server is told) and closes the session, since
//     a request the server sends late for this call must not be taken for
//     the next call's (which connects again: a new session, over stdio a
//     new process). When the server asks two things at once, the first to
//     arrive ends the attempt and the other may take a round of its own. A
//     request that arrives when no call is in flight is refused.
//
// A server that asks for input with a malformed schema (not a JSON Schema
// of an object) gets nobody asked: the model reads why the call failed. A
// person who declines or cancels is passed on as MCP's decline or cancel
// action; the tool decides what that means. Roots are not offered. Without
// an agent run (a tool called directly), the call returns the
// *tools.NeedsInputError for its caller to serve.
//
// AgentServer (serve.go) goes the other way: an http.Handler (streamable
// HTTP) that offers a Runtime's agents as MCP tools, so an MCP client (an
// IDE, another agent) starts a durable run with a call and gets its final
// answer, or, if the run outlives the call's wait, its id and status and
// what it waits for; cairn_run_result reads a run's result by id later,
// from any process on the same store. A call names its run (a run_id
// argument, else the request's MetaIdempotencyKey), so a retried call
// attaches to the run it started. Authentication is the embedding
// program's (ServeOptions.Guard, or a handler around it); `cairn mcp
// serve` serves a program's agents from the command line.
package mcp
