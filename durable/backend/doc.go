// Package backend is the contract between the durable engine and the
// stores that keep its runs, as database/sql/driver is to database/sql.
//
// Workflow authors and clients use package durable. This package is for
// two other readers:
//
//   - those who implement a store: the Store interface, its optional
//     capabilities (Watcher, ActivityQueue, Feed, Archive) checked with a
//     type assertion, and what they exchange with the engine (Commit, Lease,
//     Task, InboxEntry, ActivityTask, FeedEntry). A store is done when it
//     passes the conformance suite in durable/storetest. The stores of this
//     module are durable/redis and durable/inmem.
//   - those who read what a store keeps: the record of a run (RunInfo,
//     Status, Failure, Trace) and its history, a list of Events in a
//     versioned JSON encoding (EncodeEvent, DecodeEvent, DecodeHistory,
//     MarshalHistory), whose payloads a Codec may protect at rest. The
//     command-line tool, timelines and replay checks read histories this
//     way, with no engine.
//
// A store never interprets an event: it keeps encoded events at positions
// 1, 2, 3, ... and enforces who may append them (see Store). Nothing here
// imports the engine.
package backend
