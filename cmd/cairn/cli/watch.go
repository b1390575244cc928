package cli

import (
	"context"
	"errors"
)

// watchCommand is the watch command (placeholder, being written).
func watchCommand() *command {
	return &command{name: "watch", args: "RUN", summary: "Follow a live run until it ends or waits.", store: true,
		nargs: exactly(1), run: func(context.Context, *env, []string) error { return errors.New("not yet") }}
}
