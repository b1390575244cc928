package agent_test

import (
	"bytes"
	"slices"
	"testing"

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
	if err != nil || len(p) != 2 || p[0].Arguments != `{"order":"A1","amount":500}` {
		t.Fatalf("pending %+v, %v", p, err)
	}
	for _, c := range []string{"call_0_1", "call_0_2"} {
		if err := e.rt.Decide(ctx, run.ID, agent.Decision{CallID: c, Approved: true, By: "alice", Reason: "not over the limit"}); err != nil {
			t.Fatal(err)
		}
	}
	res := e.result(run)
	if got := slices.Sorted(slices.Values(s.refunded())); res.Text != "Done." || !slices.Equal(got, []string{"A1:500", "B2:300", "C3:20"}) {
		t.Fatalf("result %+v, refunds %v", res, s.refunded())
	}
	raw, err := store.ReadHistory(ctx, run.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range raw {
		for _, secret := range []string{"Refund order A1", "amount", "over the limit"} {
			if bytes.Contains(entry, []byte(secret)) {
				t.Errorf("%q readable at rest in %s", secret, entry)
			}
		}
	}
	e.replays(a, run.ID)
}
