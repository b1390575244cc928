package cli

import (
	"context"
	"errors"
)

// replayCheckCommand is the replay-check command (placeholder, being written).
func (app App) replayCheckCommand() *command {
	return &command{name: "replay-check", args: "[FILE.json ...]", summary: "Replay recorded histories against this program's code.",
		run: func(context.Context, *env, []string) error { return errors.New("not yet") }}
}
