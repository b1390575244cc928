package otelsetup

import (
	"context"
	"log/slog"

	"github.com/cairn-dev/cairn/durable"
)

// runHandler adds to each record logged in an activity's context the
// run, step and attempt it belongs to.
type runHandler struct {
	slog.Handler
}

func (h runHandler) Handle(ctx context.Context, r slog.Record) error {
	if info, ok := durable.ActivityInfoFrom(ctx); ok {
		r = r.Clone() // another handler may hold the same record
		r.AddAttrs(slog.String("run_id", info.RunID), slog.Int("step", info.Step), slog.Int("attempt", info.Attempt))
	}
	return h.Handler.Handle(ctx, r)
}

func (h runHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return runHandler{h.Handler.WithAttrs(attrs)}
}

func (h runHandler) WithGroup(name string) slog.Handler {
	return runHandler{h.Handler.WithGroup(name)}
}
