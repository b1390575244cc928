// Package memory is what an agent remembers: within a conversation, a
// bounded context, and across conversations, a long-term store searched
// by meaning.
//
// # Context
//
// A Policy says what the model sees each turn: the system instructions,
// the conversation's first user message, pinned facts and a running
// summary, then the latest messages verbatim, within a budget of tokens
// and of messages. When a prompt would pass the budget, the agent loop
// compacts: it asks Plan where to cut (never between a tool call and its
// result), has the Summarizer fold the evicted messages into the summary
// (the previous summary and the new messages only), and keeps the result
// with Fold, which checks it and falls back when it is empty, too long or
// missing. The agent runs the summary as a durable activity, so a
// compaction is journaled once and replayed, never redone; and it carries
// the State (summary, pinned facts, opening message) and the recent window,
// not the transcript, from one generation of a conversation to the next.
//
// Token counts come from a Tokenizer: Approx, or OpenAI's encodings in
// memory/tiktoken; the agent corrects them with the input tokens the
// provider reports.
//
// # Long-term memory
//
// A Store keeps items (a text, its vector, metadata) in namespaces such
// as "user/42", and searches them by cosine similarity with metadata
// filters. Memory pairs a Store with a providers.Embedder.
package memory
