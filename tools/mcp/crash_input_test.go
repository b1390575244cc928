package mcp_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// The input crash test: a worker process runs an agent whose MCP tool
// book asks for a person's answer and a sample of the model (the desk
// server, in the test process, over streamable HTTP, asking in its results
// under protocol 2026-07-28, with requests of its own under 2025-11-25).
// The sample is journaled, the person
// answers, and the worker is killed with SIGKILL while the server serves
// the call made again with both. A second worker process takes the run
// over and makes that call again: with the recorded sample (the model is
// not called again: the sample names the process that made it) and the
// recorded answer (the person is not asked again).

// deskAgent returns the maker of the agent of the input crash test, whose
// client asks for protocol version.
func deskAgent(version string) func(mcpURL string) (*agent.Agent, *mcp.Client, error) {
	return func(mcpURL string) (*agent.Agent, *mcp.Client, error) { return deskAgentOf(mcpURL, version) }
}

func deskAgentOf(mcpURL, version string) (*agent.Agent, *mcp.Client, error) {
	c, err := mcp.NewClient("desk", mcp.StreamableHTTP(mcpURL, nil, nil), mcp.Options{Elicitation: true, Sampling: true,
		ProtocolVersion: version, HonorsIdempotencyKey: true, Retry: durable.RetryPolicy{InitialInterval: 10 * time.Millisecond}})
	if err != nil {
		return nil, nil, err
	}
	turns := []providers.Response{toolTurn(tc("book", `{"flight":"LH1"}`)), answer("done")}
	model := scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		if req.System == "sampler" {
			return providers.Response{Model: "m", Message: providers.Message{Content: "blurb from pid " + strconv.Itoa(os.Getpid())}}, nil
		}
		return turns[min(scripted.Turn(req), 1)], nil
	})
	return &agent.Agent{Name: "desk", Model: model, Toolsets: []agent.Toolset{c}}, c, nil
}

func TestCrashWorkerKilledAfterInput(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a worker process and waits out its lease; run without -short")
	}
	for _, version := range protocols {
		t.Run("protocol="+version, func(t *testing.T) { crashAfterInput(t, version) })
	}
}

func crashAfterInput(t *testing.T, version string) {
	d := &desk{block: make(chan struct{}), started: make(chan struct{})}
	defer close(d.block)
	cr := newCrashRun(t, d.server(), deskAgent(version), "crash-input", "book LH1")
	rt, a, run := cr.rt, cr.agent, cr.run
	ctx := ctxT(t)

	first := cr.startWorker(t, "desk:"+version)
	q := oneQuestion(t, ctx, rt, run.ID)
	require.NoError(t, rt.Answer(ctx, run.ID, agent.Answer{CallID: q.CallID, By: "ann", Text: `{"seat":"aisle"}`}))
	select {
	case <-d.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the first worker never called book with its input")
	}
	first.Kill()

	cr.startWorker(t, "desk:"+version)
	res, err := run.Result(ctx)
	require.NoError(t, err)
	blurb := fmt.Sprintf("blurb from pid %d", first.Pid())
	assert.Equal(t, []string{"booked aisle on LH1 (" + blurb + ")"}, toolMessages(res))

	d.mu.Lock()
	assert.Equal(t, []string{blurb, blurb}, d.blurbs, "the call made again has the first worker's sample")
	for _, k := range d.keys {
		assert.Equal(t, d.keys[0], k, "one idempotency key")
	}
	d.mu.Unlock()

	h, err := run.History(ctx)
	require.NoError(t, err)
	count := map[string]int{}
	for _, ev := range h {
		switch {
		case ev.Type == backend.EventSideEffect:
			count[ev.Name]++
		case ev.Type == backend.EventActivityCompleted:
			count[ev.Name]++
		case ev.Type == backend.EventActivityAttemptFailed:
			count["lost "+ev.Name]++
		}
	}
	assert.Equal(t, 1, count["question_asked"], "the person is asked once")
	assert.Equal(t, 1, count["question_answered"])
	assert.Equal(t, 2, count["model:desk"], "two turns")
	assert.Equal(t, 1, count["sample:desk"], "one sample")
	// The server asks its two requests at once; the first to arrive
	// ends the attempt, so the other may take a round of its own.
	assert.Contains(t, []int{2, 3}, count["tool:desk/book"], "the rounds that asked, and the call with the input")
	assert.Equal(t, 1, count["lost tool:desk/book"], "the attempt lost with the worker")
	assert.NoError(t, durable.ReplayHistory(rt.Workflow(a), h))
}
