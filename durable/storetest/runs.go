package storetest

import (
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Records, histories and inboxes: what clients read and write.

func testCreateRun(e *env) {
	in := backend.RunInfo{
		ID: "r1", Workflow: "greet", InputHash: "h1", Status: backend.StatusPending,
		ParentID: "parent", ParentStep: 3,
	}
	require.NoError(e.t, in.Trace.UnmarshalText([]byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")))
	got, created, err := e.s.CreateRun(e.ctx(), in, []byte("first"))
	require.NoError(e.t, err, "CreateRun")
	require.True(e.t, created, "CreateRun: want created")
	assert.GreaterOrEqual(e.t, got.Version, int64(1), "Version")
	want := in
	want.CreatedAt = e.clock.Now()
	want.UpdatedAt = e.clock.Now()
	want.HistoryLen = 1
	want.Version = got.Version
	assert.Equal(e.t, normalize(want), normalize(got), "CreateRun returned record")
	assert.Equal(e.t, normalize(want), normalize(e.get("r1")), "GetRun after CreateRun")
	e.wantHistory("r1", 1, "first")
	task, ok := e.pollNow()
	require.True(e.t, ok, "Poll after CreateRun: want a task for r1")
	assert.Equal(e.t, "r1", task.RunID, "Poll after CreateRun")
	assert.NotEmpty(e.t, task.ID, "Poll after CreateRun: want a task with an id")
}

func testCreateRunDuplicate(e *env) {
	orig := e.create("r1")
	e.drain()
	e.clock.Advance(time.Second)

	again := backend.RunInfo{ID: "r1", Workflow: "other", InputHash: "other", Status: backend.StatusPending}
	got, created, err := e.s.CreateRun(e.ctx(), again, []byte("other first"))
	require.NoError(e.t, err, "CreateRun of an existing id")
	require.False(e.t, created, "CreateRun of an existing id: want not created")
	assert.Equal(e.t, normalize(orig), normalize(got), "CreateRun of an existing id returned")
	assert.Equal(e.t, normalize(orig), normalize(e.get("r1")), "GetRun after a duplicate CreateRun")
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
		assert.ErrorIs(e.t, c.call(), backend.ErrRunNotFound, "%s of an unknown run", c.name)
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
		got := e.createRun(info, []byte("first"))
		require.True(e.t, got.CreatedAt.Equal(info.CreatedAt), "CreateRun changed CreatedAt %v to %v", info.CreatedAt, got.CreatedAt)
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
		require.NoError(e.t, err, "ListRuns(%+v)", c.filter)
		var got []string
		for _, r := range runs {
			got = append(got, r.ID)
		}
		assert.Equal(e.t, c.want, got, "ListRuns(%+v)", c.filter)
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
		assert.NotEmpty(e.t, entry.ID, "inbox entry id")
		assert.False(e.t, ids[entry.ID], "inbox entry id %q is repeated", entry.ID)
		ids[entry.ID] = true
	}
	assert.Equal(e.t, []string{"m1", "m2", "m3"}, got, "ReadInbox")
	e.expectTask("r1")
}

// testCopiesBytes checks that callers cannot change stored data through
// slices they passed in or got back.
func testCopiesBytes(e *env) {
	first := []byte("first")
	e.createRun(backend.RunInfo{ID: "r1", Workflow: "wf", Status: backend.StatusPending}, first)
	first[0] = 'X'
	h, err := e.s.ReadHistory(e.ctx(), "r1", 1)
	require.NoError(e.t, err)
	h[0][0] = 'Y'
	e.wantHistory("r1", 1, "first")

	msg := []byte("msg")
	require.NoError(e.t, e.s.Send(e.ctx(), "r1", msg))
	msg[0] = 'X'
	e.inbox("r1")[0].Event[0] = 'Y'
	assert.Equal(e.t, "msg", string(e.inbox("r1")[0].Event), "inbox entry after callers changed their slices")

	c := step(e.lease("r1", "w1", time.Minute), 1, "second")
	c.Run.Failure = &backend.Failure{Message: "boom"}
	e.commit(c)
	c.Events[0][0] = 'X'
	c.Run.Failure.Message = "changed"
	e.get("r1").Failure.Message = "changed again"
	e.wantHistory("r1", 2, "second")
	failure := e.get("r1").Failure
	require.NotNil(e.t, failure, "record failure after callers changed theirs")
	assert.Equal(e.t, "boom", failure.Message, "record failure after callers changed theirs")
}
