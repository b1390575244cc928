package agent_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/aesgcm"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// xorCodec is a toy cipher: enough to tell whether payloads are encoded at
// rest.
type xorCodec struct{}

func (xorCodec) Name() string { return "xor" }

func (xorCodec) Encode(p []byte) ([]byte, error) { return xor(p), nil }

func (xorCodec) Decode(p []byte) ([]byte, error) { return xor(p), nil }

func xor(p []byte) []byte {
	out := make([]byte, len(p))
	for i, b := range p {
		out[i] = b ^ 0x5a
	}
	return out
}

// TestCodec: with Options.Codec, the runtime's workers and clients encode
// and decode payloads with it: runs complete, approvals are listed and
// decided, and nothing readable is left at rest.
func TestCodec(t *testing.T) {
	var s shop
	_, a := refundAgent(&s, t, "refunder")
	store := newMemoryStore()
	e := newEnvOn(t, store, agent.Options{Codec: xorCodec{}}, a)
	ctx := ctxT(t)
	run := e.startRun(a, "secret-1", agent.Input{Message: "Refund order A1 please."})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	p, err := e.rt.Pending(ctx, agent.PendingFilter{RunID: run.ID})
	require.NoError(t, err)
	require.Len(t, p, 2)
	assert.Equal(t, `{"order":"A1","amount":500}`, p[0].Arguments)
	for _, c := range []string{"call_0_1", "call_0_2"} {
		require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: c, Approved: true, By: "alice", Reason: "not over the limit"}))
	}
	res := e.result(run)
	assert.Equal(t, "Done.", res.Text)
	assert.Equal(t, []string{"A1:500", "B2:300", "C3:20"}, slices.Sorted(slices.Values(s.refunded())))
	raw, err := store.ReadHistory(ctx, run.ID, 1)
	require.NoError(t, err)
	for _, entry := range raw {
		for _, secret := range []string{"Refund order A1", "amount", "over the limit"} {
			assert.NotContains(t, string(entry), secret, "readable at rest")
		}
	}
	e.replays(a, run.ID)
}

// TestAESGCMAtRest: with the AES-GCM codec, the history, the inbox (a
// decision sent while no worker runs) and the live feed hold no plaintext;
// the runtime still reads all three, and one without the key skips the
// feed's entries instead of failing.
func TestAESGCMAtRest(t *testing.T) {
	var s shop
	_, a := refundAgent(&s, t, "refunder")
	store := inmem.New()
	k1 := aesgcm.Key{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}
	codec, err := aesgcm.New(k1)
	require.NoError(t, err)
	e := newEnvOn(t, store, agent.Options{Codec: codec}, a)
	ctx := ctxT(t)
	run := e.startRun(a, "sealed-1", agent.Input{Message: "Refund order A1 please."})
	e.waitStatus(run.ID, backend.StatusAwaitingApproval)
	e.halt()
	for _, c := range []string{"call_0_1", "call_0_2"} {
		require.NoError(t, e.rt.Decide(ctx, run.ID, agent.Decision{CallID: c, Approved: true, By: "alice", Reason: "not over the limit"}))
	}
	secrets := []string{"Refund order A1", `"amount"`, "not over the limit", "Done."}
	inbox, err := store.ReadInbox(ctx, run.ID)
	require.NoError(t, err)
	require.Len(t, inbox, 2, "the decisions wait in the inbox")
	for _, entry := range inbox {
		assert.Contains(t, string(entry.Event), `"codec":"aes-gcm"`)
		for _, secret := range secrets {
			assert.NotContains(t, string(entry.Event), secret, "inbox readable at rest")
		}
	}
	e.start()
	assert.Equal(t, "Done.", e.result(run).Text)
	require.NoError(t, e.rt.Flush(ctx))

	raw, err := store.ReadHistory(ctx, run.ID, 1)
	require.NoError(t, err)
	feed, err := store.ReadFeed(ctx, run.ID, "", 0)
	require.NoError(t, err)
	require.NotEmpty(t, feed)
	for _, entry := range raw {
		for _, secret := range secrets {
			assert.NotContains(t, string(entry), secret, "history readable at rest")
		}
	}
	for _, entry := range feed {
		assert.True(t, bytes.HasPrefix(entry.Data, []byte("codec:aes-gcm\n")), "feed entry not sealed: %q", entry.Data)
		for _, secret := range secrets {
			assert.NotContains(t, string(entry.Data), secret, "feed readable at rest")
		}
	}
	live, err := e.rt.LiveEvents(ctx, run.ID, "")
	require.NoError(t, err)
	require.Len(t, live, len(feed))
	var decided []string
	for _, le := range live {
		if le.Type == agent.LiveApprovalDecided {
			decided = append(decided, le.Reason)
		}
	}
	assert.Equal(t, []string{"not over the limit", "not over the limit"}, decided)

	// Without the key: no event, no error.
	other, err := aesgcm.New(aesgcm.Key{ID: "k0", Secret: bytes.Repeat([]byte{2}, 32)})
	require.NoError(t, err)
	blind := agent.NewRuntime(store, agent.Options{Codec: other, Logger: quietLogger()})
	live, err = blind.LiveEvents(ctx, run.ID, "")
	require.NoError(t, err)
	assert.Empty(t, live)
	e.replays(a, run.ID)
}
