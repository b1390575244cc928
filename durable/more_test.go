package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
)

func TestChildWorkflows(t *testing.T) {
	child := durable.NewWorkflow("child", func(ctx durable.Context, s string) (string, error) {
		if s == "bad" {
			return "", errors.New("bad input")
		}
		return durable.Execute(ctx, a, s)
	})
	parent := durable.NewWorkflow("parent", func(ctx durable.Context, in []string) (string, error) {
		var fs []durable.Future[string]
		for _, s := range in {
			fs = append(fs, durable.StartChild(ctx, child, s))
		}
		var out []string
		for _, f := range fs {
			v, err := f.Get(ctx)
			var ce *durable.ChildError
			if errors.As(err, &ce) {
				v = "failed: " + ce.Failure.Message + " in " + ce.RunID
			} else if err != nil {
				return "", err
			}
			out = append(out, v)
		}
		return strings.Join(out, ", "), nil
	})
	e := newEnv(t, parent, child)
	ctx := ctxT(t)
	run, _ := parent.Start(ctx, e.client, "p", []string{"x", "bad", "y"})
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "a(x), failed: bad input in p/0/2, a(y)", got)
	info, err := e.client.Describe(ctx, "p/0/1")
	require.NoError(t, err, "child record")
	assert.Equal(t, "p", info.ParentID, "child record")
	assert.Equal(t, 1, info.ParentStep, "child record")
	assert.Equal(t, backend.StatusCompleted, info.Status, "child record")
}

func TestCancelPropagatesToChildren(t *testing.T) {
	child := durable.NewWorkflow("waiter", func(ctx durable.Context, _ struct{}) (string, error) {
		return approve.Receive(ctx)
	})
	parent := durable.NewWorkflow("boss", func(ctx durable.Context, _ struct{}) (string, error) {
		return durable.ExecuteChild(ctx, child, struct{}{})
	})
	e := newEnv(t, parent, child)
	ctx := ctxT(t)
	run, _ := parent.Start(ctx, e.client, "boss", struct{}{})
	e.waitStatus("boss/0/1", backend.StatusWaiting)
	require.NoError(t, e.client.Cancel(ctx, "boss"))
	_, err := run.Result(ctx)
	require.ErrorIs(t, err, durable.ErrCanceled, "parent err")
	e.waitStatus("boss/0/1", backend.StatusCanceled)
}

func TestDeterministicServicesSurviveReplay(t *testing.T) {
	var sideEffects atomic.Int32
	var mu sync.Mutex
	var firstSeen string
	record := durable.NewActivity("record", func(ctx context.Context, s string) (struct{}, error) {
		mu.Lock()
		defer mu.Unlock()
		firstSeen = s
		return struct{}{}, nil
	})
	wf := durable.NewWorkflow("services", func(ctx durable.Context, _ struct{}) (string, error) {
		id := durable.NewID(ctx)
		n := durable.Rand(ctx).IntN(1_000_000)
		se, err := durable.SideEffect(ctx, func() int32 { return sideEffects.Add(1) * 7 })
		if err != nil {
			return "", err
		}
		start := durable.Now(ctx)
		s := fmt.Sprintf("%s %d %d %d", id, n, se, start.UnixNano())
		if _, err := durable.Execute(ctx, record, s); err != nil {
			return "", err
		}
		if _, err := approve.Receive(ctx); err != nil { // evicted here; replayed after
			return "", err
		}
		if !durable.Now(ctx).After(start) {
			return "", errors.New("time did not move")
		}
		return s, nil
	})
	e := newEnv(t, wf)
	ctx := ctxT(t)
	run, _ := wf.Start(ctx, e.client, "s", struct{}{})
	e.waitStatus("s", backend.StatusWaiting)
	e.start(wf) // a new process: nothing of the first execution is in memory
	time.Sleep(time.Millisecond)
	require.NoError(t, approve.Send(ctx, e.client, "s", "go"))
	got, err := run.Result(ctx)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, firstSeen, got, "replayed values differ from the first execution's")
	assert.Equal(t, int32(1), sideEffects.Load(), "side effect runs")
	id := strings.Fields(got)[0]
	require.Len(t, id, 36, "NewID %q: want a version 4 UUID", id)
	assert.Equal(t, byte('4'), id[14], "NewID %q: want a version 4 UUID", id)
}

func TestBadHistoryParksTheRun(t *testing.T) {
	wf := durable.NewWorkflow("flow", func(ctx durable.Context, in string) (string, error) { return in, nil })
	start := func(t *testing.T) [][]byte {
		first, err := backend.EncodeEvent(backend.Event{Seq: 1, Type: backend.EventRunStarted, Name: "flow", Payload: []byte(`"x"`), Time: time.Now()}, nil)
		require.NoError(t, err)
		return [][]byte{first}
	}
	for _, tc := range []struct {
		name  string
		entry string
		want  backend.FailureKind
	}{
		{"garbage", "\x00\xffnot json", backend.KindCorrupt},
		{"truncated", `{"v":1,"seq":2,"type":"timer_fi`, backend.KindCorrupt},
		{"unknown type", `{"v":1,"seq":2,"type":"quantum_leap"}`, backend.KindUnknownEvent},
		{"newer encoding", `{"v":7,"seq":2,"type":"timer_fired"}`, backend.KindUnknownEvent},
		{"wrong position", `{"v":1,"seq":9,"type":"signal_received","name":"x"}`, backend.KindCorrupt},
		{"event for no step", `{"v":1,"seq":2,"type":"activity_completed","step":4}`, backend.KindNondeterminism},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newIdleEnv(t)
			seedRun(t, e.store, backend.RunInfo{ID: "r", Workflow: "flow"}, append(start(t), []byte(tc.entry)))
			e.start(wf)
			info := e.waitStatus("r", backend.StatusParked)
			require.NotNil(t, info.Failure, "failure")
			assert.Equal(t, tc.want, info.Failure.Kind, "failure %+v", info.Failure)
		})
	}
	t.Run("bad inbox entry", func(t *testing.T) {
		waiter := durable.NewWorkflow("flow", func(ctx durable.Context, in string) (string, error) { return approve.Receive(ctx) })
		e := newIdleEnv(t)
		seedRun(t, e.store, backend.RunInfo{ID: "r", Workflow: "flow"}, start(t))
		_ = e.store.Send(ctxT(t), "r", []byte(`{"v":1,"type":"from_the_future"}`))
		e.start(waiter)
		info := e.waitStatus("r", backend.StatusParked)
		if assert.NotNil(t, info.Failure, "failure") {
			assert.Equal(t, backend.KindUnknownEvent, info.Failure.Kind, "failure %+v", info.Failure)
		}
		inbox, _ := e.store.ReadInbox(ctxT(t), "r")
		assert.Len(t, inbox, 1, "inbox: want the bad entry kept")
	})
}

// xorCodec stands in for encryption.
type xorCodec struct{}

func (xorCodec) Name() string { return "xor" }
func (xorCodec) Encode(p []byte) ([]byte, error) {
	out := make([]byte, len(p))
	for i, c := range p {
		out[i] = c ^ 0x5a
	}
	return out, nil
}
func (x xorCodec) Decode(p []byte) ([]byte, error) { return x.Encode(p) }

func TestCodecProtectsPayloads(t *testing.T) {
	// The secret has spaces between its digit groups: no timestamp, seed,
	// hash, id or base64 text that an entry holds can contain it by chance.
	const card = "4242 4242 4242 4242"
	secret := durable.NewActivity("secret", func(ctx context.Context, s string) (string, error) { return "card " + s, nil })
	wf := durable.NewWorkflow("pay", func(ctx durable.Context, s string) (string, error) { return durable.Execute(ctx, secret, s) })
	e := newIdleEnv(t)
	w := durable.NewWorker(e.store, durable.WorkerOptions{Codec: xorCodec{}, Logger: quietLogger()})
	w.Register(wf)
	client := durable.NewClient(e.store, durable.ClientOptions{Codec: xorCodec{}})
	ctx := ctxT(t)
	run, err := wf.Start(ctx, client, "pay", card)
	require.NoError(t, err)
	require.NoError(t, w.Drain(ctx))
	got, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "card "+card, got)

	raw, err := e.store.ReadHistory(ctx, "pay", 1)
	require.NoError(t, err)
	clear := map[backend.EventType]string{} // the payloads, decoded with the codec
	for _, entry := range raw {
		assert.NotContains(t, string(entry), card, "payload stored in clear")
		var wire struct {
			Type    backend.EventType `json:"type"`
			Codec   string            `json:"codec"`
			Payload json.RawMessage   `json:"payload"`
		}
		require.NoError(t, json.Unmarshal(entry, &wire))
		if len(wire.Payload) == 0 {
			continue
		}
		assert.Equal(t, "xor", wire.Codec, "%s: a payload written without the codec", wire.Type)
		ev, err := backend.DecodeEvent(entry, xorCodec{})
		require.NoError(t, err)
		clear[ev.Type] = string(ev.Payload)
	}
	// The check above looked where the secret is: these payloads hold it.
	assert.Equal(t, `"`+card+`"`, clear[backend.EventRunStarted])
	assert.Equal(t, `"card `+card+`"`, clear[backend.EventActivityCompleted])
	assert.Equal(t, `"card `+card+`"`, clear[backend.EventRunCompleted])

	_, err = e.client.History(ctx, "pay")
	assert.ErrorIs(t, err, backend.ErrCorruptHistory, "reading without the codec: want a clear error")
}

func TestDescribeAndList(t *testing.T) {
	wf := flow(fixed(a))
	e := newEnv(t, wf)
	ctx := ctxT(t)
	for _, id := range []string{"w1", "w2"} {
		_, err := wf.Start(ctx, e.client, id, id)
		require.NoError(t, err)
		e.waitStatus(id, backend.StatusWaiting)
	}
	_ = approve.Send(ctx, e.client, "w1", "z")
	e.waitStatus("w1", backend.StatusCompleted)
	info, err := e.client.Describe(ctx, "w2")
	assert.NoError(t, err, "describe")
	assert.Equal(t, "signal approve", info.Waiting, "describe")
	assert.Equal(t, 1, info.Step, "describe")
	assert.Equal(t, "flow", info.Workflow, "describe")
	waiting, _ := e.client.ListRuns(ctx, backend.RunFilter{Status: backend.StatusWaiting})
	done, _ := e.client.ListRuns(ctx, backend.RunFilter{Status: backend.StatusCompleted, Workflow: "flow"})
	if assert.Len(t, waiting, 1, "waiting runs") {
		assert.Equal(t, "w2", waiting[0].ID, "waiting run")
	}
	if assert.Len(t, done, 1, "completed runs") {
		assert.Equal(t, "w1", done[0].ID, "completed run")
	}
	_, err = e.client.Describe(ctx, "nope")
	assert.ErrorIs(t, err, backend.ErrRunNotFound, "describe unknown")
}
