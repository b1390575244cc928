package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-dev/cairn/durable/backend"
)

// damage is what is wrong with a run's history that does not read whole.
//
// A history (a Redis list, entry i at position i+1) is damaged when an
// entry cannot be decoded, is not at its position (it says another), or
// was not written by a commit (the list holds more entries than the
// run's record counts: an RPUSH by hand or by another program). Workers
// park such a run (status parked, failure kind corrupt_history). Repair
// it, then resume it:
//
//   - entries beyond the record's count were written outside cairn:
//     remove them with LTRIM, keeping the entries the record counts (show
//     prints the command), then run cairn resume RUN;
//   - an entry within the count that cannot be read was committed by
//     cairn and then lost or changed (or others were pushed in front):
//     restore the history list from a backup (or, for an event of a newer
//     cairn, run workers that know it), then cairn resume RUN.
type damage struct {
	// Position is the first position that does not read.
	Position int64  `json:"position"`
	Error    string `json:"error"`
	// Foreign is the number of entries beyond the record's count, when
	// the damage is there.
	Foreign int64 `json:"foreign,omitempty"`
	// Key is the history's Redis key.
	Key string `json:"key"`
}

// readHistory reads and decodes a run's history up to its first damaged
// position; damage is nil if it reads whole.
func (e *env) readHistory(ctx context.Context, info backend.RunInfo) ([]backend.Event, *damage, error) {
	entries, readErr := e.store.ReadHistory(ctx, info.ID, 1)
	if readErr != nil && !errors.Is(readErr, backend.ErrCorruptHistory) {
		return nil, nil, readErr
	}
	var history []backend.Event
	var bad error
	for i, entry := range entries {
		pos := int64(i) + 1
		ev, err := backend.DecodeHistory([][]byte{entry}, pos, e.shown())
		if err != nil {
			bad = err
			break
		}
		if pos > info.HistoryLen {
			bad = fmt.Errorf("history position %d: %w: the run's record counts %d events, so no commit wrote it",
				pos, backend.ErrCorruptHistory, info.HistoryLen)
			break
		}
		history = append(history, ev...)
	}
	if bad == nil {
		bad = readErr
	}
	if bad == nil {
		return history, nil, nil
	}
	d := &damage{Position: int64(len(history)) + 1, Error: bad.Error(), Key: e.store.HistoryKey(info.ID)}
	if d.Position > info.HistoryLen {
		d.Foreign = int64(len(entries)) - info.HistoryLen
	}
	return history, d, nil
}

// writeDamage says what is wrong with a history and how to repair it.
func writeDamage(e *env, info backend.RunInfo, d *damage) {
	name := e.app.name()
	fmt.Fprintf(e.out, "\nDamaged    %s\n", d.Error)
	if d.Foreign > 0 {
		fmt.Fprintf(e.out, "           The run's record counts %d events; the history list holds %d more, written outside cairn.\n",
			info.HistoryLen, d.Foreign)
		them := "them"
		if d.Foreign == 1 {
			them = "it"
		}
		fmt.Fprintf(e.out, "Repair     remove %s (keep the first %d entries), then resume the run:\n", them, info.HistoryLen)
		fmt.Fprintf(e.out, "             redis-cli LTRIM '%s' 0 %d\n", d.Key, info.HistoryLen-1)
	} else {
		fmt.Fprintf(e.out, "           The entry is within the %d events the run committed: it was lost or changed.\n", info.HistoryLen)
		fmt.Fprintf(e.out, "Repair     restore the list %s from a backup (for an event of a newer cairn,\n", d.Key)
		fmt.Fprintln(e.out, "           run workers that know it instead), then resume the run:")
	}
	fmt.Fprintf(e.out, "             %s resume %s\n", name, info.ID)
}
