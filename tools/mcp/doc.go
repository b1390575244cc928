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
// Sampling requests of a server (a server asking the client's model for a
// completion while it serves a call) are answered by Options.Sampling, a
// providers.Model, within the attempt of the call: the completion is part
// of the call's journaled result, not an activity of its own. Elicitation
// (a server asking a person) is not supported yet: the Client does not
// declare it, so servers do not ask.
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
