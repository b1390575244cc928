package storetest

import (
	"context"
	"fmt"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
)

// feedTests are run on stores that implement backend.Feed.
var feedTests = []struct {
	name string
	fn   func(*env, backend.Feed)
}{
	{"Feed/PublishAndRead", testFeedPublishRead},
	{"Feed/Limit", testFeedLimit},
	{"Feed/BlocksUntilPublish", testFeedBlocks},
	{"Feed/CanceledContext", testFeedCanceled},
	{"Feed/DoneContextReturnsReady", testFeedDoneReady},
	{"Feed/SeparateRuns", testFeedSeparate},
	{"Feed/UnknownRun", testFeedUnknownRun},
	{"Feed/MalformedAfter", testFeedMalformed},
	{"Feed/PublishMany", testFeedPublishMany},
}

// testFeedPublishMany: several entries published at once come in order,
// with increasing ids, after what was there; none is nothing.
func testFeedPublishMany(e *env, f backend.Feed) {
	e.create("r1")
	first := e.publish(f, "r1", "first")
	ids, err := f.Publish(e.ctx(), "r1", []byte("a"), []byte("b"), []byte("c"))
	require.NoError(e.t, err, "Publish of 3 entries")
	require.Len(e.t, ids, 3, "Publish of 3 entries")
	got := e.readFeed(f, "r1", first, 0)
	e.wantFeed(got, "after publishing three at once", "a", "b", "c")
	for i, entry := range got {
		assert.Equal(e.t, ids[i], entry.ID, "entry %d: want the id Publish gave", i)
	}
	none, err := f.Publish(e.ctx(), "r1")
	assert.NoError(e.t, err, "Publish of nothing")
	assert.Empty(e.t, none, "Publish of nothing")
	e.noFeed(f, "r1", ids[2], "after the three")
}

// promptly bounds, in real time, how long a ReadFeed may take to return
// once its context is canceled.
const promptly = 5 * time.Second

func (e *env) publish(f backend.Feed, runID, data string) string {
	e.t.Helper()
	ids, err := f.Publish(e.ctx(), runID, []byte(data))
	require.NoError(e.t, err, "Publish(%q, %q)", runID, data)
	require.Len(e.t, ids, 1, "Publish(%q, %q)", runID, data)
	require.NotEmpty(e.t, ids[0], "Publish(%q, %q): want an id", runID, data)
	return ids[0]
}

func (e *env) readFeed(f backend.Feed, runID, after string, limit int) []backend.FeedEntry {
	e.t.Helper()
	entries, err := f.ReadFeed(e.ctx(), runID, after, limit)
	require.NoError(e.t, err, "ReadFeed(%q, %q, %d)", runID, after, limit)
	return entries
}

// wantFeed fails unless entries hold the data want, in order.
func (e *env) wantFeed(entries []backend.FeedEntry, when string, want ...string) {
	e.t.Helper()
	var got []string // nil for none, as want is
	for _, entry := range entries {
		got = append(got, string(entry.Data))
	}
	require.Equal(e.t, want, got, "%s: ReadFeed", when)
}

// noFeed fails unless ReadFeed waits, for quiet, for an entry after after.
func (e *env) noFeed(f backend.Feed, runID, after, when string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx(), quiet)
	defer cancel()
	entries, err := f.ReadFeed(ctx, runID, after, 0)
	require.ErrorIs(e.t, err, context.DeadlineExceeded, "%s: ReadFeed = %d entries; want it to wait until the context's deadline", when, len(entries))
}

// readFeedAsync reads in a goroutine and delivers the result on the
// channel.
func (e *env) readFeedAsync(ctx context.Context, f backend.Feed, runID, after string) <-chan feedOrError {
	ch := make(chan feedOrError, 1)
	go func() {
		entries, err := f.ReadFeed(ctx, runID, after, 0)
		ch <- feedOrError{entries, err}
	}()
	return ch
}

type feedOrError struct {
	entries []backend.FeedEntry
	err     error
}

// feedBlocked fails if the read in ch returned within quiet.
func (e *env) feedBlocked(ch <-chan feedOrError, when string) {
	e.t.Helper()
	select {
	case r := <-ch:
		e.t.Fatalf("%s: ReadFeed returned %d entries, %v; want it to block", when, len(r.entries), r.err)
	case <-time.After(quiet):
	}
}

func testFeedPublishRead(e *env, f backend.Feed) {
	e.create("r1")
	// More than ten entries, published as fast as may be: ids that share a
	// millisecond must still compare as strings in order.
	var ids, data []string
	for i := range 25 {
		d := fmt.Sprintf("e%02d", i+1)
		id := e.publish(f, "r1", d)
		if len(ids) > 0 {
			require.Greater(e.t, id, ids[len(ids)-1], "Publish of %s gave an id not greater than the previous", d)
		}
		ids, data = append(ids, id), append(data, d)
	}
	all := e.readFeed(f, "r1", "", 0)
	e.wantFeed(all, "from the start", data...)
	for i, entry := range all {
		require.Equal(e.t, ids[i], entry.ID, "entry %d: want the id Publish gave", i)
	}
	after := e.readFeed(f, "r1", ids[9], 0)
	e.wantFeed(after, "after the 10th entry", data[10:]...)
	require.Equal(e.t, ids[10], after[0].ID, "first entry after %q", ids[9])
	e.noFeed(f, "r1", ids[len(ids)-1], "after the last entry")

	// The store copies what it is given and what it returns.
	buf := []byte("new")
	published, err := f.Publish(e.ctx(), "r1", buf)
	require.NoError(e.t, err, "Publish")
	require.Len(e.t, published, 1, "Publish")
	id := published[0]
	copy(buf, "xxx")
	got := e.readFeed(f, "r1", ids[len(ids)-1], 0)
	e.wantFeed(got, "after changing the published slice", "new")
	copy(got[0].Data, "yyy")
	e.wantFeed(e.readFeed(f, "r1", ids[len(ids)-1], 0), "after changing a returned slice", "new")
	assert.Equal(e.t, id, got[0].ID, "entry: want the id Publish gave")
}

func testFeedLimit(e *env, f backend.Feed) {
	e.create("r1")
	for i := range 5 {
		e.publish(f, "r1", fmt.Sprint("e", i+1))
	}
	first := e.readFeed(f, "r1", "", 2)
	e.wantFeed(first, "limit 2 from the start", "e1", "e2")
	next := e.readFeed(f, "r1", first[1].ID, 2)
	e.wantFeed(next, "limit 2 after e2", "e3", "e4")
	e.wantFeed(e.readFeed(f, "r1", next[1].ID, 0), "no limit after e4", "e5")
	e.wantFeed(e.readFeed(f, "r1", "", -1), "limit -1 from the start", "e1", "e2", "e3", "e4", "e5")
}

func testFeedBlocks(e *env, f backend.Feed) {
	e.create("r1")
	ch := e.readFeedAsync(e.ctx(), f, "r1", "")
	e.feedBlocked(ch, "on an empty feed")
	e.publish(f, "r1", "a")
	r := <-ch
	require.NoError(e.t, r.err, "blocked ReadFeed")
	e.wantFeed(r.entries, "blocked ReadFeed on an empty feed", "a")

	ch = e.readFeedAsync(e.ctx(), f, "r1", r.entries[0].ID)
	e.feedBlocked(ch, "after the last entry")
	e.publish(f, "r1", "b")
	r = <-ch
	require.NoError(e.t, r.err, "blocked ReadFeed")
	e.wantFeed(r.entries, "blocked ReadFeed after the last entry", "b")
}

func testFeedCanceled(e *env, f backend.Feed) {
	e.create("r1")
	ctx, cancel := context.WithCancel(e.ctx())
	ch := e.readFeedAsync(ctx, f, "r1", "")
	e.feedBlocked(ch, "on an empty feed")
	cancel()
	select {
	case r := <-ch:
		require.ErrorIs(e.t, r.err, context.Canceled, "ReadFeed after its context was canceled = %d entries", len(r.entries))
	case <-time.After(promptly):
		e.t.Fatalf("ReadFeed still blocked %v after its context was canceled", promptly)
	}
	entries, err := f.ReadFeed(ctx, "r1", "", 0)
	assert.ErrorIs(e.t, err, context.Canceled, "ReadFeed with a done context on an empty feed = %d entries", len(entries))
}

func testFeedDoneReady(e *env, f backend.Feed) {
	e.create("r1")
	e.publish(f, "r1", "a")
	ctx, cancel := context.WithCancel(e.ctx())
	cancel()
	entries, err := f.ReadFeed(ctx, "r1", "", 0)
	require.NoError(e.t, err, "ReadFeed with a done context and an entry ready: want the entry")
	e.wantFeed(entries, "with a done context", "a")
}

func testFeedSeparate(e *env, f backend.Feed) {
	e.create("r1")
	e.create("r2")
	e.publish(f, "r1", "a1")
	last := e.publish(f, "r2", "b1")
	e.publish(f, "r1", "a2")
	e.wantFeed(e.readFeed(f, "r1", "", 0), "r1", "a1", "a2")
	e.wantFeed(e.readFeed(f, "r2", "", 0), "r2", "b1")
	e.noFeed(f, "r2", last, "r2 after its last entry")
}

func testFeedUnknownRun(e *env, f backend.Feed) {
	e.publish(f, "nobody", "a")
	e.wantFeed(e.readFeed(f, "nobody", "", 0), "the feed of a run that does not exist", "a")
	_, err := e.s.GetRun(e.ctx(), "nobody")
	assert.ErrorIs(e.t, err, backend.ErrRunNotFound, "GetRun after Publish to an unknown run")
}

func testFeedMalformed(e *env, f backend.Feed) {
	e.create("r1")
	e.publish(f, "r1", "a")
	for _, after := range []string{"bogus", "-", "1-2-3-x"} {
		entries, err := f.ReadFeed(e.ctx(), "r1", after, 0)
		assert.Error(e.t, err, "ReadFeed after %q = %d entries; want an error at once", after, len(entries))
		assert.NotErrorIs(e.t, err, context.DeadlineExceeded, "ReadFeed after %q: want an error at once", after)
		assert.NotErrorIs(e.t, err, context.Canceled, "ReadFeed after %q: want an error at once", after)
	}
}
