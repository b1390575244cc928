package durable

import (
	"fmt"
	"log/slog"

	"github.com/cairn-dev/cairn/durable/backend"
)

// ReplayHistory replays a recorded history against the workflow's current
// code, with no store and no activities, and returns the first divergence:
// a *NondeterminismError, an error for a history that does not belong to
// the workflow, or nil if the code issues exactly the commands the history
// recorded. Run it in CI against histories of runs in flight (see
// MarshalHistory) to know before a deploy whether the new code would park
// them.
func ReplayHistory(wf WorkflowDefinition, history []backend.Event) error {
	def := wf.workflow()
	if len(history) == 0 || history[0].Type != backend.EventRunStarted {
		return fmt.Errorf("%w: history does not begin with %s", backend.ErrCorruptHistory, backend.EventRunStarted)
	}
	if history[0].Name != "" && history[0].Name != def.name {
		return fmt.Errorf("history is of workflow %q, not %q", history[0].Name, def.name)
	}
	for i, e := range history {
		if e.Seq != int64(i+1) {
			return fmt.Errorf("%w: event %d says position %d", backend.ErrCorruptHistory, i+1, e.Seq)
		}
	}
	rt := newRuntime("replay", 0, def, slog.New(slog.DiscardHandler))
	defer rt.close()
	rt.load(history)
	return rt.fatal
}
