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
