package storetest

import (
	"bytes"
	"errors"
	"slices"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Records, histories and inboxes: what clients read and write.

func testCreateRun(e *env) {
	in := backend.RunInfo{
		ID: "r1", Workflow: "greet", InputHash: "h1", Status: backend.StatusPending,
		ParentID: "parent", ParentStep: 3,
	}
	if err := in.Trace.UnmarshalText([]byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")); err != nil {
		e.t.Fatal(err)
	}
	got, created, err := e.s.CreateRun(e.ctx(), in, []byte("first"))
	if err != nil || !created {
		e.t.Fatalf("CreateRun = created %v, %v; want created", created, err)
	}
	if got.Version < 1 {
		e.t.Errorf("Version = %d; want at least 1", got.Version)
	}
	want := in
	want.CreatedAt = e.clock.Now()
	want.UpdatedAt = e.clock.Now()
	want.HistoryLen = 1
	want.Version = got.Version
	if d := diffRun(got, want); d != "" {
		e.t.Errorf("CreateRun returned record:\n%s", d)
	}
	if d := diffRun(e.get("r1"), want); d != "" {
		e.t.Errorf("GetRun after CreateRun:\n%s", d)
	}
	e.wantHistory("r1", 1, "first")
	task, ok := e.pollNow()
	if !ok || task.RunID != "r1" || task.ID == "" {
		e.t.Fatalf("Poll after CreateRun = %+v, %v; want a task for r1 with an id", task, ok)
	}
}

func testCreateRunDuplicate(e *env) {
	orig := e.create("r1")
	e.drain()
	e.clock.Advance(time.Second)

	again := backend.RunInfo{ID: "r1", Workflow: "other", InputHash: "other", Status: backend.StatusPending}
	got, created, err := e.s.CreateRun(e.ctx(), again, []byte("other first"))
	if err != nil || created {
		e.t.Fatalf("CreateRun of an existing id = created %v, %v; want not created, no error", created, err)
	}
	if d := diffRun(got, orig); d != "" {
		e.t.Errorf("CreateRun of an existing id returned:\n%s", d)
	}
	if d := diffRun(e.get("r1"), orig); d != "" {
		e.t.Errorf("GetRun after a duplicate CreateRun:\n%s", d)
	}
	e.wantHistory("r1", 1, "r1/1")
	e.noTask("after a duplicate CreateRun")
}

func testUnknownRun(e *env) {
	ctx := e.ctx()
	calls := []struct {
		name string
		call func() error
	}{
		{"GetRun", func() error { _, err := e.s.GetRun(ctx, "nope"); return err }},
		{"ReadHistory", func() error { _, err := e.s.ReadHistory(ctx, "nope", 1); return err }},
		{"ReadInbox", func() error { _, err := e.s.ReadInbox(ctx, "nope"); return err }},
		{"Send", func() error { return e.s.Send(ctx, "nope", []byte("x")) }},
		{"Lease", func() error { _, err := e.s.Lease(ctx, "nope", "w1", time.Minute); return err }},
	}
	e.create("r1")
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, backend.ErrRunNotFound) {
			e.t.Errorf("%s of an unknown run: %v; want ErrRunNotFound", c.name, err)
		}
	}
}

func testListRuns(e *env) {
	t0 := e.clock.Now()
	for _, r := range []struct {
		id, workflow string
		created      time.Duration
	}{
		{"a", "x", 1 * time.Second},
		{"b", "y", 2 * time.Second},
		{"c", "x", 3 * time.Second},
		{"d", "x", 3 * time.Second}, // same time as c: ordered by id
	} {
		info := backend.RunInfo{ID: r.id, Workflow: r.workflow, Status: backend.StatusPending, CreatedAt: t0.Add(r.created)}
		if got := e.createRun(info, []byte("first")); !got.CreatedAt.Equal(info.CreatedAt) {
			e.t.Fatalf("CreateRun changed CreatedAt %v to %v", info.CreatedAt, got.CreatedAt)
		}
	}
	l := e.lease("c", "w1", time.Minute)
	done := step(l, 1)
	done.Run.Status = backend.StatusCompleted
	e.commit(done)

	cases := []struct {
		filter backend.RunFilter
		want   []string
	}{
		{backend.RunFilter{}, []string{"d", "c", "b", "a"}},
		{backend.RunFilter{Workflow: "x"}, []string{"d", "c", "a"}},
		{backend.RunFilter{Status: backend.StatusCompleted}, []string{"c"}},
		{backend.RunFilter{Status: backend.StatusPending, Workflow: "x"}, []string{"d", "a"}},
		{backend.RunFilter{Limit: 2}, []string{"d", "c"}},
		{backend.RunFilter{Workflow: "x", Limit: 5}, []string{"d", "c", "a"}},
		{backend.RunFilter{Workflow: "none"}, nil},
	}
	for _, c := range cases {
		runs, err := e.s.ListRuns(e.ctx(), c.filter)
		if err != nil {
			e.t.Fatalf("ListRuns(%+v): %v", c.filter, err)
		}
		var got []string
		for _, r := range runs {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, c.want) {
			e.t.Errorf("ListRuns(%+v) = %q; want %q", c.filter, got, c.want)
		}
	}
}

func testReadHistory(e *env) {
	e.create("r1")
	e.commit(step(e.lease("r1", "w1", time.Minute), 1, "r1/2", "r1/3", "r1/4"))
	cases := []struct {
		from int64
		want []string
	}{
		{1, []string{"r1/1", "r1/2", "r1/3", "r1/4"}},
		{2, []string{"r1/2", "r1/3", "r1/4"}},
		{4, []string{"r1/4"}},
		{5, nil},
		{50, nil},
	}
	for _, c := range cases {
		e.wantHistory("r1", c.from, c.want...)
	}
}

func testSend(e *env) {
	e.create("r1")
	e.drain()
	for _, m := range []string{"m1", "m2", "m3"} {
		e.send("r1", m)
	}
	entries := e.inbox("r1")
	var got []string
	ids := make(map[string]bool)
	for _, entry := range entries {
		got = append(got, string(entry.Event))
		if entry.ID == "" || ids[entry.ID] {
			e.t.Errorf("inbox entry id %q is empty or repeated", entry.ID)
		}
		ids[entry.ID] = true
	}
	if !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		e.t.Errorf("ReadInbox = %q; want m1, m2, m3", got)
	}
	e.expectTask("r1")
}

// testCopiesBytes checks that callers cannot change stored data through
// slices they passed in or got back.
func testCopiesBytes(e *env) {
	first := []byte("first")
	e.createRun(backend.RunInfo{ID: "r1", Workflow: "wf", Status: backend.StatusPending}, first)
	first[0] = 'X'
	h, err := e.s.ReadHistory(e.ctx(), "r1", 1)
	if err != nil {
		e.t.Fatal(err)
	}
	h[0][0] = 'Y'
	e.wantHistory("r1", 1, "first")

	msg := []byte("msg")
	if err := e.s.Send(e.ctx(), "r1", msg); err != nil {
		e.t.Fatal(err)
	}
	msg[0] = 'X'
	e.inbox("r1")[0].Event[0] = 'Y'
	if got := e.inbox("r1")[0].Event; !bytes.Equal(got, []byte("msg")) {
		e.t.Errorf("inbox entry = %q after callers changed their slices; want msg", got)
	}

	c := step(e.lease("r1", "w1", time.Minute), 1, "second")
	c.Run.Failure = &backend.Failure{Message: "boom"}
	e.commit(c)
	c.Events[0][0] = 'X'
	c.Run.Failure.Message = "changed"
	e.get("r1").Failure.Message = "changed again"
	e.wantHistory("r1", 2, "second")
	if got := e.get("r1").Failure; got == nil || got.Message != "boom" {
		e.t.Errorf("record failure = %+v after callers changed theirs; want boom", got)
	}
}
