package durable

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// ReplayHistory replays a recorded history against the workflow's current
// code, with no store and no activities, and returns the first divergence:
// a *NondeterminismError, an error for a history that does not belong to
// the workflow, or nil if the code issues exactly the commands the history
// recorded. Run it in CI against histories of runs in flight (see
// MarshalHistory) to know before a deploy whether the new code would park
// them.
func ReplayHistory(wf WorkflowDefinition, history []Event) error {
	def := wf.workflow()
	if len(history) == 0 || history[0].Type != EventRunStarted {
		return fmt.Errorf("%w: history does not begin with %s", ErrCorruptHistory, EventRunStarted)
	}
	if history[0].Name != "" && history[0].Name != def.name {
		return fmt.Errorf("history is of workflow %q, not %q", history[0].Name, def.name)
	}
	for i, e := range history {
		if e.Seq != int64(i+1) {
			return fmt.Errorf("%w: event %d says position %d", ErrCorruptHistory, i+1, e.Seq)
		}
	}
	rt := newRuntime("replay", 0, def, slog.New(slog.DiscardHandler))
	defer rt.close()
	rt.load(history)
	return rt.fatal
}

// MarshalHistory encodes events as a JSON array with one event per line,
// in the versioned event encoding: the format of exported histories and
// golden files.
func MarshalHistory(events []Event) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("[\n")
	for i, e := range events {
		data, err := EncodeEvent(e, nil)
		if err != nil {
			return nil, err
		}
		buf.Write(data)
		if i < len(events)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("]\n")
	return buf.Bytes(), nil
}

// UnmarshalHistory decodes a history encoded by MarshalHistory, checking
// every event as a store's history is checked.
func UnmarshalHistory(r io.Reader) ([]Event, error) {
	var raw []json.RawMessage
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: history is not a JSON array: %v", ErrCorruptHistory, err)
	}
	entries := make([][]byte, len(raw))
	for i, r := range raw {
		entries[i] = r
	}
	return DecodeHistory(entries, 1, nil)
}
