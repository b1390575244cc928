package redis

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// A run's record lives in its hash as these fields (scripts also keep the
// lease and bookkeeping fields there; see the Lua files):
//
//	meta   JSON of what CreateRun fixed for good: id, workflow, input hash, parent, creation time, trace
//	st     status
//	state  JSON of what each commit saves: step, waiting, wake time, failure
//	cr     creation time in µs, the score of the run in the indexes
//	upd    update time, RFC 3339 with nanoseconds
//	ver    version; hlen history length; gen generation
//	wv     the version of the last commit that moved the run on (backend.Watcher)
//	wake   wake time in ms (0: none), for the scripts

// meta is the part of a record that CreateRun fixes for good.
type meta struct {
	ID         string        `json:"id"`
	Workflow   string        `json:"workflow"`
	InputHash  string        `json:"input_hash,omitempty"`
	ParentID   string        `json:"parent_id,omitempty"`
	ParentStep int           `json:"parent_step,omitempty"`
	CreatedAt  time.Time     `json:"created_at"`
	Trace      backend.Trace `json:"trace,omitzero"`
}

// state is the part of a record that each commit saves.
type state struct {
	Step    int              `json:"step,omitempty"`
	Waiting string           `json:"waiting,omitempty"`
	WakeAt  time.Time        `json:"wake_at,omitzero"`
	Failure *backend.Failure `json:"failure,omitempty"`
}

func encodeMeta(info backend.RunInfo) string {
	data, _ := json.Marshal(meta{ID: info.ID, Workflow: info.Workflow, InputHash: info.InputHash,
		ParentID: info.ParentID, ParentStep: info.ParentStep, CreatedAt: info.CreatedAt.UTC(), Trace: info.Trace})
	return string(data)
}

func encodeState(info backend.RunInfo) string {
	data, _ := json.Marshal(state{Step: info.Step, Waiting: info.Waiting, WakeAt: info.WakeAt.UTC(), Failure: info.Failure})
	return string(data)
}

func encodeTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// micros is a time's score in the indexes.
func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// millis is a time as the scripts and deadline sets hold it. Times before
// 1970 become 1 ms after it: they are due all the same.
func millis(t time.Time) int64 { return max(t.UnixMilli(), 1) }

// decodeRecord rebuilds a record from its hash fields. It returns an
// error, not a panic, for fields that Redis holds but this code cannot read.
func decodeRecord(f map[string]string) (backend.RunInfo, error) {
	var m meta
	if err := json.Unmarshal([]byte(f["meta"]), &m); err != nil {
		return backend.RunInfo{}, fmt.Errorf("decode record: meta: %w", err)
	}
	var st state
	if err := json.Unmarshal([]byte(f["state"]), &st); err != nil {
		return backend.RunInfo{}, fmt.Errorf("decode record %s: state: %w", m.ID, err)
	}
	info := backend.RunInfo{
		ID: m.ID, Workflow: m.Workflow, InputHash: m.InputHash, ParentID: m.ParentID,
		ParentStep: m.ParentStep, CreatedAt: m.CreatedAt, Trace: m.Trace,
		Status: backend.Status(f["st"]), Step: st.Step, Waiting: st.Waiting, WakeAt: st.WakeAt, Failure: st.Failure,
	}
	var err error
	if info.UpdatedAt, err = time.Parse(time.RFC3339Nano, f["upd"]); err != nil {
		return backend.RunInfo{}, fmt.Errorf("decode record %s: updated: %w", m.ID, err)
	}
	ints := []struct {
		name string
		dst  *int64
	}{{"ver", &info.Version}, {"hlen", &info.HistoryLen}}
	for _, field := range ints {
		if *field.dst, err = strconv.ParseInt(f[field.name], 10, 64); err != nil {
			return backend.RunInfo{}, fmt.Errorf("decode record %s: %s: %w", m.ID, field.name, err)
		}
	}
	gen, err := strconv.Atoi(f["gen"])
	if err != nil {
		return backend.RunInfo{}, fmt.Errorf("decode record %s: gen: %w", m.ID, err)
	}
	info.Generation = gen
	return info, nil
}

// pairsToMap turns a flat [field, value, ...] reply into a map.
func pairsToMap(v any) (map[string]string, error) {
	list, ok := v.([]any)
	if !ok || len(list)%2 != 0 {
		return nil, fmt.Errorf("unexpected reply %T", v)
	}
	m := make(map[string]string, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		k, ok1 := list[i].(string)
		val, ok2 := list[i+1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("unexpected field %v", list[i])
		}
		m[k] = val
	}
	return m, nil
}
