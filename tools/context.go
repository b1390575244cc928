package tools

import (
	"context"

	"github.com/cairn-dev/cairn/durable"
)

type idempotencyKeyKey struct{}

// WithIdempotencyKey returns a context that carries key to the tool. The
// layer that calls tools sets it, e.g. to a key derived from the run and
// the model's tool-call id, so every attempt of one call sees the same key.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyKey{}, key)
}

// IdempotencyKey returns the key of the call that ctx belongs to: the one
// set by WithIdempotencyKey, or else the idempotency key of the durable
// activity attempt running the tool (durable.ActivityInfoFrom). It is the
// same for every attempt of one call; a tool that honours it passes it to
// the system it changes. ok is false when there is none, as when a tool is
// called directly outside a run.
func IdempotencyKey(ctx context.Context) (key string, ok bool) {
	if k, ok := ctx.Value(idempotencyKeyKey{}).(string); ok && k != "" {
		return k, true
	}
	if info, ok := durable.ActivityInfoFrom(ctx); ok && info.IdempotencyKey != "" {
		return info.IdempotencyKey, true
	}
	return "", false
}

// Progress is how far a running call has come, as a tool reports it: an
// MCP server's progress notification, a long download's bytes.
type Progress struct {
	// Progress is the amount done so far; it increases with each report.
	Progress float64 `json:"progress"`
	// Total is the amount to do, zero if unknown.
	Total float64 `json:"total,omitempty"`
	// Message says what is being done, for people.
	Message string `json:"message,omitempty"`
}

type progressKey struct{}

// WithProgress returns a context whose ReportProgress calls fn. The layer
// that calls tools sets it: the agent runtime turns each report into a
// live event of the run. fn may be called from any goroutine, concurrently,
// and must return quickly.
func WithProgress(ctx context.Context, fn func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ReportProgress reports a running call's progress: it heartbeats the
// durable activity attempt running the call (see durable.Heartbeat), so a
// call that keeps reporting outlives a HeartbeatTimeout, and passes p to
// the function set with WithProgress, if any. Outside a call it does
// nothing.
func ReportProgress(ctx context.Context, p Progress) {
	durable.Heartbeat(ctx)
	if fn, ok := ctx.Value(progressKey{}).(func(Progress)); ok && fn != nil {
		fn(p)
	}
}
