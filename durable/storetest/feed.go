package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

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
	if err != nil || len(ids) != 3 {
		e.t.Fatalf("Publish of 3 entries gave ids %q, %v", ids, err)
	}
	got := e.readFeed(f, "r1", first, 0)
	e.wantFeed(got, "after publishing three at once", "a", "b", "c")
	for i, entry := range got {
		if entry.ID != ids[i] {
			e.t.Errorf("entry %d has id %q; Publish gave %q", i, entry.ID, ids[i])
		}
	}
	if none, err := f.Publish(e.ctx(), "r1"); err != nil || len(none) != 0 {
		e.t.Errorf("Publish of nothing gave %q, %v", none, err)
	}
	e.noFeed(f, "r1", ids[2], "after the three")
}

// promptly bounds, in real time, how long a ReadFeed may take to return
// once its context is canceled.
const promptly = 5 * time.Second

func (e *env) publish(f backend.Feed, runID, data string) string {
	e.t.Helper()
	ids, err := f.Publish(e.ctx(), runID, []byte(data))
	if err != nil {
		e.t.Fatalf("Publish(%q, %q): %v", runID, data, err)
	}
	if len(ids) != 1 || ids[0] == "" {
		e.t.Fatalf("Publish(%q, %q) gave ids %q; want one", runID, data, ids)
	}
	return ids[0]
}

func (e *env) readFeed(f backend.Feed, runID, after string, limit int) []backend.FeedEntry {
	e.t.Helper()
	entries, err := f.ReadFeed(e.ctx(), runID, after, limit)
	if err != nil {
		e.t.Fatalf("ReadFeed(%q, %q, %d): %v", runID, after, limit, err)
	}
	return entries
}

// wantFeed fails unless entries hold the data want, in order.
func (e *env) wantFeed(entries []backend.FeedEntry, when string, want ...string) {
	e.t.Helper()
	got := make([]string, len(entries))
	for i, entry := range entries {
		got[i] = string(entry.Data)
	}
	if !slices.Equal(got, want) {
		e.t.Fatalf("%s: ReadFeed = %q; want %q", when, got, want)
	}
}

// noFeed fails unless ReadFeed waits, for quiet, for an entry after after.
func (e *env) noFeed(f backend.Feed, runID, after, when string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx(), quiet)
	defer cancel()
	if entries, err := f.ReadFeed(ctx, runID, after, 0); !errors.Is(err, context.DeadlineExceeded) {
		e.t.Fatalf("%s: ReadFeed = %d entries, %v; want it to wait until the context's deadline", when, len(entries), err)
	}
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
		if len(ids) > 0 && id <= ids[len(ids)-1] {
			e.t.Fatalf("Publish of %s gave id %q, not greater than the previous %q", d, id, ids[len(ids)-1])
		}
		ids, data = append(ids, id), append(data, d)
	}
	all := e.readFeed(f, "r1", "", 0)
	e.wantFeed(all, "from the start", data...)
	for i, entry := range all {
		if entry.ID != ids[i] {
			e.t.Fatalf("entry %d has id %q; Publish gave %q", i, entry.ID, ids[i])
		}
	}
	after := e.readFeed(f, "r1", ids[9], 0)
	e.wantFeed(after, "after the 10th entry", data[10:]...)
	if after[0].ID != ids[10] {
		e.t.Fatalf("first entry after %q has id %q; want %q", ids[9], after[0].ID, ids[10])
	}
	e.noFeed(f, "r1", ids[len(ids)-1], "after the last entry")

	// The store copies what it is given and what it returns.
	buf := []byte("new")
	published, err := f.Publish(e.ctx(), "r1", buf)
	if err != nil || len(published) != 1 {
		e.t.Fatalf("Publish gave %q, %v", published, err)
	}
	id := published[0]
	copy(buf, "xxx")
	got := e.readFeed(f, "r1", ids[len(ids)-1], 0)
	e.wantFeed(got, "after changing the published slice", "new")
	copy(got[0].Data, "yyy")
	e.wantFeed(e.readFeed(f, "r1", ids[len(ids)-1], 0), "after changing a returned slice", "new")
	if got[0].ID != id {
		e.t.Fatalf("entry has id %q; Publish gave %q", got[0].ID, id)
	}
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
	if r.err != nil {
		e.t.Fatalf("blocked ReadFeed: %v", r.err)
	}
	e.wantFeed(r.entries, "blocked ReadFeed on an empty feed", "a")

	ch = e.readFeedAsync(e.ctx(), f, "r1", r.entries[0].ID)
	e.feedBlocked(ch, "after the last entry")
	e.publish(f, "r1", "b")
	r = <-ch
	if r.err != nil {
		e.t.Fatalf("blocked ReadFeed: %v", r.err)
	}
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
		if !errors.Is(r.err, context.Canceled) {
			e.t.Fatalf("ReadFeed after its context was canceled = %d entries, %v; want context.Canceled", len(r.entries), r.err)
		}
	case <-time.After(promptly):
		e.t.Fatalf("ReadFeed still blocked %v after its context was canceled", promptly)
	}
	if entries, err := f.ReadFeed(ctx, "r1", "", 0); !errors.Is(err, context.Canceled) {
		e.t.Fatalf("ReadFeed with a done context on an empty feed = %d entries, %v; want context.Canceled", len(entries), err)
	}
}

func testFeedDoneReady(e *env, f backend.Feed) {
	e.create("r1")
	e.publish(f, "r1", "a")
	ctx, cancel := context.WithCancel(e.ctx())
	cancel()
	entries, err := f.ReadFeed(ctx, "r1", "", 0)
	if err != nil {
		e.t.Fatalf("ReadFeed with a done context and an entry ready: %v; want the entry", err)
	}
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
	if _, err := e.s.GetRun(e.ctx(), "nobody"); !errors.Is(err, backend.ErrRunNotFound) {
		e.t.Fatalf("GetRun after Publish to an unknown run: %v; want backend.ErrRunNotFound", err)
	}
}

func testFeedMalformed(e *env, f backend.Feed) {
	e.create("r1")
	e.publish(f, "r1", "a")
	for _, after := range []string{"bogus", "-", "1-2-3-x"} {
		entries, err := f.ReadFeed(e.ctx(), "r1", after, 0)
		if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			e.t.Errorf("ReadFeed after %q = %d entries, %v; want an error at once", after, len(entries), err)
		}
	}
}
