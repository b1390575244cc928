// Package tools turns typed Go functions into tools a model can call.
//
// A tool is a function func(context.Context, In) (Out, error) with a name,
// a description and the JSON Schema of In, generated from In's struct tags
// by github.com/invopop/jsonschema (json names, `jsonschema:"description=...,
// enum=a,enum=b,default=1"`). A field is required unless its json tag has
// omitempty or omitzero. Tools cross the boundary as JSON: a model sends
// arguments as bytes, Call validates them against the schema
// (github.com/santhosh-tekuri/jsonschema/v6), decodes them into In, runs
// the function and encodes Out back to JSON. That is what a later layer
// journals, so every call is bytes in and a Result out.
//
// Call sorts what can go wrong into three kinds:
//
//   - The model's mistakes and the tool's ordinary errors (malformed JSON,
//     invalid UTF-8, schema violations, an unknown tool, an error returned
//     by the function) become a Result with IsError set whose Content tells
//     the model exactly what was wrong, so it can correct itself. Bad
//     arguments never reach the function.
//   - Failed attempts (a panic, a timeout, an error marked Retryable, a
//     canceled context) are returned as Call's error; the caller retries
//     them per the tool's RetryPolicy.
//   - Fatal errors (marked with Fatal) are returned as Call's error and
//     stop the run: IsFatal tells them apart.
//
// Package tools knows nothing of durability. The agent layer runs each call
// as an activity and passes the idempotency key through the context; a
// tool that talks to an outside system reads it with IdempotencyKey.
//
// Tools are values: a Set lists, looks up, filters and describes them
// (Definition is the neutral description a provider converts to its own
// wire format).
package tools
