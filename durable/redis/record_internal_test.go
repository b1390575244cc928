package redis

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordFieldsOf are the fields of a record as CreateRun and a commit
// write them, for the decoder tests.
func recordFieldsOf() map[string]string {
	return map[string]string{"id": "r1", "wf": "wf", "ca": "2026-01-02T03:04:05Z", "cr": "1767323045000000",
		"st": "running", "step": "3", "wait": "", "wa": "", "fail": "", "upd": "2026-01-02T03:04:06Z",
		"ver": "4", "hlen": "7", "gen": "1"}
}

// TestDecodeRecordExportMark: the span export mark of the current history
// reads; one of another history, or one that does not read, is no mark and
// no error (it is advisory: a bad one must not stop the run).
func TestDecodeRecordExportMark(t *testing.T) {
	for mark, want := range map[string]int64{"1:5": 5, "0:5": 0, "": 0, "1:": 0, "x:5": 0, "1:-3": 0, "1:5:6": 0, "garbage": 0} {
		f := recordFieldsOf()
		f["sx"] = mark
		info, err := decodeRecord(f)
		require.NoError(t, err, "mark %q", mark)
		assert.Equal(t, want, info.SpansExported, "mark %q", mark)
	}
}

// FuzzDecodeRecord: no field value makes the decoder panic.
func FuzzDecodeRecord(f *testing.F) {
	for _, seed := range []struct{ field, value string }{
		{"sx", "1:5"}, {"sx", "::"}, {"tr", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		{"fail", `{"message":"x","kind":"timeout"}`}, {"fail", "{"}, {"hlen", "-1"}, {"wa", "yesterday"}, {"inb", "9999999999999999999999"},
	} {
		f.Add(seed.field, seed.value)
	}
	f.Fuzz(func(t *testing.T, field, value string) {
		fields := recordFieldsOf()
		fields[field] = value
		_, _ = decodeRecord(fields)
	})
}
