package storetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
)

// archiveTests are run on stores that implement backend.Archive.
var archiveTests = []struct {
	name string
	fn   func(*env, backend.Archive)
}{
	{"Archive/PutAndGet", testArchivePutGet},
	{"Archive/WrittenOnce", testArchiveWrittenOnce},
	{"Archive/Idempotent", testArchiveIdempotent},
	{"Archive/Nothing", testArchiveNothing},
	{"Archive/UnknownRun", testArchiveUnknownRun},
	{"Archive/SeparateRuns", testArchiveSeparateRuns},
	{"Archive/CopiesBytes", testArchiveCopiesBytes},
	{"Archive/OutlivesHistories", testArchiveOutlivesHistories},
	{"Archive/Concurrent", testArchiveConcurrent},
}

func (e *env) putBlobs(a backend.Archive, runID string, blobs map[string]string) {
	e.t.Helper()
	require.NoError(e.t, a.PutBlobs(e.ctx(), runID, byteBlobs(blobs)), "PutBlobs(%q, %d blobs)", runID, len(blobs))
}

// wantBlobs fails unless GetBlobs of keys gives want.
func (e *env) wantBlobs(a backend.Archive, runID string, keys []string, want map[string]string, when string) {
	e.t.Helper()
	got, err := a.GetBlobs(e.ctx(), runID, keys)
	require.NoError(e.t, err, "%s: GetBlobs(%q, %v)", when, runID, keys)
	require.Equal(e.t, want, stringBlobs(got), "%s: GetBlobs(%q, %v)", when, runID, keys)
}

func byteBlobs(blobs map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(blobs))
	for k, v := range blobs {
		out[k] = []byte(v)
	}
	return out
}

func stringBlobs(blobs map[string][]byte) map[string]string {
	out := make(map[string]string, len(blobs))
	for k, v := range blobs {
		out[k] = string(v)
	}
	return out
}

// binary holds every byte value: blobs are bytes, not text.
var binary = func() string {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return string(b)
}()

// testArchivePutGet: blobs come back as they were put, binary or empty;
// keys not stored are absent.
func testArchivePutGet(e *env, a backend.Archive) {
	e.create("r1")
	e.putBlobs(a, "r1", map[string]string{"a": "A", "b/1": binary, "empty": ""})
	e.wantBlobs(a, "r1", []string{"a", "b/1", "empty", "missing"},
		map[string]string{"a": "A", "b/1": binary, "empty": ""}, "after one put")
	e.wantBlobs(a, "r1", []string{"missing"}, map[string]string{}, "only a missing key")
	e.wantBlobs(a, "r1", []string{"a", "a"}, map[string]string{"a": "A"}, "a key asked twice")
}

// testArchiveWrittenOnce: a key stored keeps its first bytes; the other
// blobs of the same call are written.
func testArchiveWrittenOnce(e *env, a backend.Archive) {
	e.create("r1")
	e.putBlobs(a, "r1", map[string]string{"a": "first"})
	e.putBlobs(a, "r1", map[string]string{"a": "second", "c": "C"})
	e.wantBlobs(a, "r1", []string{"a", "c"}, map[string]string{"a": "first", "c": "C"}, "after putting a again with c")
}

// testArchiveIdempotent: a call made again (a retry) changes nothing.
func testArchiveIdempotent(e *env, a backend.Archive) {
	e.create("r1")
	blobs := map[string]string{"a": "A", "b": "B"}
	e.putBlobs(a, "r1", blobs)
	e.putBlobs(a, "r1", blobs)
	e.wantBlobs(a, "r1", []string{"a", "b"}, blobs, "after the same put twice")
}

// testArchiveNothing: no blobs to put is not an error, no keys to get
// gives none; an empty key is refused.
func testArchiveNothing(e *env, a backend.Archive) {
	e.create("r1")
	assert.NoError(e.t, a.PutBlobs(e.ctx(), "r1", nil), "PutBlobs of no blobs")
	assert.NoError(e.t, a.PutBlobs(e.ctx(), "r1", map[string][]byte{}), "PutBlobs of an empty map")
	e.wantBlobs(a, "r1", nil, map[string]string{}, "no keys")
	err := a.PutBlobs(e.ctx(), "r1", map[string][]byte{"": []byte("x"), "k": []byte("y")})
	assert.Error(e.t, err, "PutBlobs with an empty key")
	e.wantBlobs(a, "r1", []string{"", "k"}, map[string]string{}, "after a refused put: none of its blobs")
}

// testArchiveUnknownRun: putting or getting blobs of a run that does not
// exist is an error wrapping ErrRunNotFound, and creates nothing.
func testArchiveUnknownRun(e *env, a backend.Archive) {
	err := a.PutBlobs(e.ctx(), "nobody", map[string][]byte{"a": []byte("A")})
	assert.ErrorIs(e.t, err, backend.ErrRunNotFound, "PutBlobs to an unknown run")
	_, err = a.GetBlobs(e.ctx(), "nobody", []string{"a"})
	assert.ErrorIs(e.t, err, backend.ErrRunNotFound, "GetBlobs of an unknown run")
	_, err = e.s.GetRun(e.ctx(), "nobody")
	assert.ErrorIs(e.t, err, backend.ErrRunNotFound, "GetRun after PutBlobs to an unknown run")
	// A run created later has no blob of the refused put.
	e.create("nobody")
	e.wantBlobs(a, "nobody", []string{"a"}, map[string]string{}, "a run created after a refused put")
}

// testArchiveSeparateRuns: keys name blobs within their run.
func testArchiveSeparateRuns(e *env, a backend.Archive) {
	e.create("r1")
	e.create("r2")
	e.putBlobs(a, "r1", map[string]string{"k": "of r1"})
	e.putBlobs(a, "r2", map[string]string{"k": "of r2"})
	e.wantBlobs(a, "r1", []string{"k"}, map[string]string{"k": "of r1"}, "r1")
	e.wantBlobs(a, "r2", []string{"k"}, map[string]string{"k": "of r2"}, "r2")
}

// testArchiveCopiesBytes: callers cannot change stored blobs through the
// slices they passed in or got back.
func testArchiveCopiesBytes(e *env, a backend.Archive) {
	e.create("r1")
	blob := []byte("blob")
	require.NoError(e.t, a.PutBlobs(e.ctx(), "r1", map[string][]byte{"k": blob}))
	blob[0] = 'X'
	got, err := a.GetBlobs(e.ctx(), "r1", []string{"k"})
	require.NoError(e.t, err)
	got["k"][0] = 'Y'
	e.wantBlobs(a, "r1", []string{"k"}, map[string]string{"k": "blob"}, "after callers changed their slices")
}

// testArchiveOutlivesHistories: a run's blobs are kept over a new history
// (continue-as-new) and after the run ends, and may still be put then.
func testArchiveOutlivesHistories(e *env, a backend.Archive) {
	e.create("r1")
	e.putBlobs(a, "r1", map[string]string{"gen0": "A"})
	l := e.lease("r1", "w1", time.Minute)
	c := step(l, 1, "g1/1")
	c.NewHistory = true
	e.commit(c)
	e.wantHistory("r1", 1, "g1/1")
	e.wantBlobs(a, "r1", []string{"gen0"}, map[string]string{"gen0": "A"}, "after a new history")
	e.putBlobs(a, "r1", map[string]string{"gen1": "B"})
	end := step(l, 1, "g1/2")
	end.Run.Status, end.Release = backend.StatusCompleted, true
	e.commit(end)
	e.wantBlobs(a, "r1", []string{"gen0", "gen1"}, map[string]string{"gen0": "A", "gen1": "B"}, "after the run ended")
	e.putBlobs(a, "r1", map[string]string{"late": "C"})
	e.wantBlobs(a, "r1", []string{"late"}, map[string]string{"late": "C"}, "put after the run ended")
}

// testArchiveConcurrent: calls that race to put the same key leave one of
// their blobs under it, the same for every reader, and all their other
// blobs.
func testArchiveConcurrent(e *env, a backend.Archive) {
	e.create("r1")
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			errs <- a.PutBlobs(e.ctx(), "r1", map[string][]byte{
				"shared":              fmt.Appendf(nil, "from %d", i),
				fmt.Sprint("own/", i): fmt.Appendf(nil, "own %d", i),
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(e.t, err, "concurrent PutBlobs")
	}
	keys := []string{"shared"}
	for i := range writers {
		keys = append(keys, fmt.Sprint("own/", i))
	}
	got, err := a.GetBlobs(e.ctx(), "r1", keys)
	require.NoError(e.t, err)
	require.Len(e.t, got, writers+1, "blobs after %d concurrent puts", writers)
	for i := range writers {
		assert.Equal(e.t, fmt.Sprint("own ", i), string(got[fmt.Sprint("own/", i)]), "blob own/%d", i)
	}
	shared := string(got["shared"])
	assert.Regexp(e.t, `^from [0-7]$`, shared, "the shared key holds one writer's blob")
	e.wantBlobs(a, "r1", []string{"shared"}, map[string]string{"shared": shared}, "read again")
}
