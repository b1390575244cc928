package agent_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
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
