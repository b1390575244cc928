package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

// A run's record lives in its hash as these fields (scripts also keep the
// lease and bookkeeping fields there; see the Lua files). Each is short,
// so that Redis keeps the hash as a listpack (hash-max-listpack-value,
// 64 bytes by default), a third of the memory of a hash table; a run
// whose id, workflow name, wait or failure is longer costs more.
//
// What CreateRun fixes for good:
//
//	id     run id
//	wf     workflow
//	ih     input hash (absent if none)
//	par    parent run id and pst its step (absent if none)
//	ca     creation time, RFC 3339 with nanoseconds
//	cr     the same in µs, the score of the run in the indexes
//	tr     trace, as a W3C traceparent (absent if none)
//
// What each commit saves (the state):
//
//	st     status
//	step   last step
//	wait   what it waits for ("" if nothing)
//	wa     wake time, RFC 3339 with nanoseconds ("" if none)
//	fail   failure, JSON ("" if none)
//
// and what the scripts keep:
//
//	aw     "1" if the run awaits something (RunInfo.Awaiting, which its
//	       awaiting key holds), else ""
//	inb    the number of messages in the inbox (send adds one, a commit
//	       that consumes counts them again; absent: none)
//	upd    update time, RFC 3339 with nanoseconds
//	ver    version; hlen history length; gen generation
//	wv     the version of the last commit that moved the run on (backend.Watcher)
//	wake   wake time in ms (0: none), for the scripts
//	sx     "generation:position": how far the spans of the run's history
//	       were exported (backend.ExportMarker; absent: not at all)

// metaFields returns the fields of the record that CreateRun fixes, and
// its status and state, as field, value pairs.
func metaFields(info backend.RunInfo) []any {
	f := []any{"id", info.ID, "wf", info.Workflow, "ca", encodeTime(info.CreatedAt), "cr", micros(info.CreatedAt)}
	if info.InputHash != "" {
		f = append(f, "ih", info.InputHash)
	}
	if info.ParentID != "" {
		f = append(f, "par", info.ParentID, "pst", strconv.Itoa(info.ParentStep))
	}
	if !info.Trace.IsZero() {
		f = append(f, "tr", info.Trace.String())
	}
	return append(append(f, "st", string(info.Status)), stateFields(info)...)
}

// stateFields returns the state of a record as field, value pairs.
func stateFields(info backend.RunInfo) []any {
	wake, fail := "", ""
	if !info.WakeAt.IsZero() {
		wake = encodeTime(info.WakeAt)
	}
	if info.Failure != nil {
		data, _ := json.Marshal(info.Failure)
		fail = string(data)
	}
	return []any{"step", strconv.Itoa(info.Step), "wait", info.Waiting, "wa", wake, "fail", fail}
}

// encodeState returns the state of a record as the commit script takes
// it: a JSON array of field, value pairs, all strings.
func encodeState(info backend.RunInfo) string {
	data, _ := json.Marshal(stateFields(info))
	return string(data)
}

func encodeTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// micros is a time's score in the indexes.
func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// millis is a time as the scripts and deadline sets hold it. Times before
// 1970 become 1 ms after it: they are due all the same.
func millis(t time.Time) int64 { return max(t.UnixMilli(), 1) }

// recordFields returns the fields decodeRecord reads ("meta" marks a
// record of layout 1), for readRecord.
func recordFields() []string {
	return []string{"id", "wf", "ih", "par", "pst", "ca", "cr", "tr", "st", "step", "wait", "wa", "fail", "aw",
		"upd", "ver", "hlen", "gen", "inb", "sx", "meta"}
}

// readRecord adds to p a read of the fields of a record named (those of
// recordFields), and no others: HGETALL would bring the lease's and the
// scripts' bookkeeping too. recordOf turns its reply into a record's
// fields.
func readRecord(ctx context.Context, p goredis.Pipeliner, key string, names []string) *goredis.SliceCmd {
	return p.HMGet(ctx, key, names...)
}

// recordOf returns the fields of a readRecord reply that the record has:
// none if it does not exist.
func recordOf(cmd *goredis.SliceCmd, names []string) map[string]string {
	vals := cmd.Val()
	f := make(map[string]string, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok && i < len(names) {
			f[names[i]] = s
		}
	}
	return f
}

// decodeRecord rebuilds a record from its hash fields. It returns an
// error, not a panic, for fields that Redis holds but this code cannot
// read, and one wrapping ErrLayout for the record of a run of layout 1.
func decodeRecord(f map[string]string) (backend.RunInfo, error) {
	if _, old := f["meta"]; old {
		return backend.RunInfo{}, fmt.Errorf("decode record: %w: the record of a run of layout 1, written by an older cairn", ErrLayout)
	}
	d := &fieldReader{f: f}
	info := backend.RunInfo{
		ID: f["id"], Workflow: f["wf"], InputHash: f["ih"], ParentID: f["par"],
		Status: backend.Status(f["st"]), Waiting: f["wait"],
		ParentStep: int(d.int("pst", true)),
		CreatedAt:  d.time("ca", false), UpdatedAt: d.time("upd", false), WakeAt: d.time("wa", true),
		Version: d.int("ver", false), HistoryLen: d.int("hlen", false),
		Generation: int(d.int("gen", false)), Step: int(d.int("step", false)),
		Inbox: int(d.int("inb", true)),
	}
	if v := f["tr"]; v != "" && d.err == nil {
		if err := info.Trace.UnmarshalText([]byte(v)); err != nil {
			d.err = fmt.Errorf("tr: %w", err)
		}
	}
	if v := f["sx"]; v != "" {
		// A mark of an earlier history says nothing of this one. A mark
		// that does not read is no mark: it only saves spans from being
		// sent twice, and must not stop the run.
		gen, pos, ok := strings.Cut(v, ":")
		if n, err := strconv.ParseInt(pos, 10, 64); ok && err == nil && n > 0 && gen == f["gen"] {
			info.SpansExported = n
		}
	}
	if v := f["fail"]; v != "" && d.err == nil {
		info.Failure = new(backend.Failure)
		if err := json.Unmarshal([]byte(v), info.Failure); err != nil {
			d.err = fmt.Errorf("fail: %w", err)
		}
	}
	if d.err != nil {
		return backend.RunInfo{}, fmt.Errorf("decode record %s: %w", info.ID, d.err)
	}
	return info, nil
}

// fieldReader reads a record's fields. The first that does not read
// sticks in err, and makes later reads return zero values.
type fieldReader struct {
	f   map[string]string
	err error
}

// time reads an RFC 3339 time; an optional field may be "" or absent.
func (d *fieldReader) time(name string, optional bool) time.Time {
	v := d.f[name]
	if d.err != nil || (optional && v == "") {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		d.err = fmt.Errorf("%s: %w", name, err)
	}
	return t
}

// int reads a decimal integer; an optional field may be "" or absent.
func (d *fieldReader) int(name string, optional bool) int64 {
	v := d.f[name]
	if d.err != nil || (optional && v == "") {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		d.err = fmt.Errorf("%s: %w", name, err)
	}
	return n
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
