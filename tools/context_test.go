package tools_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/durabletest"
	"github.com/cairn-dev/cairn/tools"
)

func TestIdempotencyKey(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		key  string
		ok   bool
	}{
		{"none", context.Background(), "", false},
		{"set", tools.WithIdempotencyKey(context.Background(), "run-1/call_7"), "run-1/call_7", true},
		{"empty key is none", tools.WithIdempotencyKey(context.Background(), ""), "", false},
		{"innermost wins", tools.WithIdempotencyKey(tools.WithIdempotencyKey(context.Background(), "a"), "b"), "b", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, ok := tools.IdempotencyKey(tt.ctx)
			assert.Equal(t, tt.key, key, "IdempotencyKey")
			assert.Equal(t, tt.ok, ok, "IdempotencyKey's ok")
		})
	}
}

// A tool run inside a durable activity sees the activity's key, through
// Call's goroutine, unless the caller set one of its own.
func TestIdempotencyKeyFromActivity(t *testing.T) {
	ship := mustNew(t, "ship", func(ctx context.Context, _ struct{}) (string, error) {
		key, _ := tools.IdempotencyKey(ctx)
		return key, nil
	}, tools.HonorsIdempotencyKey())
	act := durable.NewActivity("call_ship", func(ctx context.Context, own string) (string, error) {
		if own != "" {
			ctx = tools.WithIdempotencyKey(ctx, own)
		}
		r, err := ship.Call(ctx, nil)
		return r.Content, err
	})
	wf := durable.NewWorkflow("wf", func(ctx durable.Context, own string) (string, error) {
		return durable.Execute(ctx, act, own)
	})
	env := durabletest.New(t, wf)
	tests := []struct{ run, own, want string }{
		{"run-a", "", `"run-a/0/1"`},
		{"run-b", "call_9", `"call_9"`},
	}
	for _, tt := range tests {
		got, err := durabletest.Run(env, wf, tt.run, tt.own)
		assert.NoError(t, err, "run %s", tt.run)
		assert.Equal(t, tt.want, got, "run %s: key", tt.run)
	}
}
