package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

type cityArgs struct {
	City string `json:"city"`
}

func call(name, args string) providers.ToolCall {
	return providers.ToolCall{Name: name, Arguments: args}
}

func toolTurn(calls ...providers.ToolCall) providers.Response {
	return providers.Response{Message: providers.Message{ToolCalls: calls}}
}

func answer(text string) providers.Response {
	return providers.Response{Message: providers.Message{Content: text}}
}

// weatherAgent calls weather for three cities at once, then answers.
func weatherAgent(t *testing.T, calls *atomic.Int64, delay func() time.Duration) *agent.Agent {
	weather := tools.MustNew("weather", "the weather in a city", func(ctx context.Context, in cityArgs) (string, error) {
		calls.Add(1)
		if delay != nil {
			time.Sleep(delay())
		}
		return "sunny in " + in.City, nil
	})
	set, err := tools.NewSet(weather)
	require.NoError(t, err)
	return &agent.Agent{
		Name:         "forecaster",
		Instructions: "Tell the weather.",
		Model: scripted.New(
			toolTurn(call("weather", `{"city":"Oslo"}`), call("weather", `{"city":"Rome"}`), call("weather", `{"city":"Lima"}`)),
			answer("Sunny everywhere."),
		),
		Tools: set,
	}
}

func TestLoopRunsToolsAndAnswers(t *testing.T) {
	var calls atomic.Int64
	a := weatherAgent(t, &calls, nil)
	e := newEnv(t, a)
	ctx := ctxT(t)
	run, err := e.rt.Start(ctx, a, "w-1", agent.Input{Message: "Weather?"})
	require.NoError(t, err)
	res, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "Sunny everywhere.", res.Text)
	assert.Equal(t, 2, res.Turns)
	assert.Equal(t, "forecaster", res.Agent)
	assert.Equal(t, int64(3), calls.Load(), "tool calls")
	var got []string
	for _, m := range res.Messages {
		got = append(got, string(m.Role)+":"+m.Content+m.ToolCallID)
	}
	want := []string{"user:Weather?", "assistant:", `tool:"sunny in Oslo"call_0_0`, `tool:"sunny in Rome"call_0_1`,
		`tool:"sunny in Lima"call_0_2`, "assistant:Sunny everywhere."}
	assert.Equal(t, want, got, "messages")
	assert.NotZero(t, res.Usage.TotalTokens, "usage not summed: %+v", res.Usage)
}

// TestParallelToolsReplayWhateverTheOrder runs the same turn many times
// with tools that finish in random order: every run gives the same
// conversation, and each history replays against the code.
func TestParallelToolsReplayWhateverTheOrder(t *testing.T) {
	var calls atomic.Int64
	a := weatherAgent(t, &calls, func() time.Duration { return time.Duration(rand.IntN(20)) * time.Millisecond })
	e := newEnv(t, a)
	ctx := ctxT(t)
	var first agent.RunResult
	orders := map[string]bool{}
	for i := range 12 {
		id := fmt.Sprintf("w-%d", i)
		run, err := e.rt.Start(ctx, a, id, agent.Input{Message: "Weather?"})
		require.NoError(t, err)
		res, err := run.Result(ctx)
		require.NoError(t, err)
		if i == 0 {
			first = res
		} else {
			assert.Equal(t, first.Messages, res.Messages, "run %d: conversation differs", i)
		}
		history, err := run.History(ctx)
		require.NoError(t, err)
		var order []string
		for _, ev := range history {
			if ev.Type == backend.EventActivityCompleted {
				order = append(order, fmt.Sprint(ev.Step))
			}
		}
		orders[strings.Join(order, ",")] = true
		assert.NoError(t, durable.ReplayHistory(e.rt.Workflow(a), history), "run %d: replay", i)
	}
	if len(orders) < 2 {
		t.Logf("only one completion order seen: %v", orders)
	}
}

// TestCrashedRunResumesWithoutRepeating stops the worker while a tool runs
// and starts another: completed model calls and tool calls are not made
// again.
func TestCrashedRunResumesWithoutRepeating(t *testing.T) {
	var modelCalls, toolCalls atomic.Int64
	release := make(chan struct{})
	slow := tools.MustNew("slow", "a slow tool", func(ctx context.Context, in cityArgs) (string, error) {
		if toolCalls.Add(1) == 1 {
			<-ctx.Done() // the first attempt is cut off by the stop
			return "", ctx.Err()
		}
		<-release
		return "done " + in.City, nil
	})
	set, _ := tools.NewSet(slow)
	script := scripted.New(toolTurn(call("slow", `{"city":"Oslo"}`)), answer("ok"))
	a := &agent.Agent{Name: "slowpoke", Tools: set, Model: scripted.Func(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		modelCalls.Add(1)
		return script.Generate(ctx, req)
	})}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run, err := e.rt.Start(ctx, a, "slow-1", agent.Input{Message: "go"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return toolCalls.Load() != 0 }, 30*time.Second, time.Millisecond, "the first tool attempt")
	e.halt()
	e.start()
	close(release)
	res, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ok", res.Text)
	assert.Equal(t, int64(2), modelCalls.Load(), "model calls")
	assert.Equal(t, int64(2), toolCalls.Load(), "tool attempts: one cut off, one retried")
}

var _ = json.Marshal
var _ = errors.New

// TestWorkflowToolWaitsDurably: a workflow tool sleeps durably between two
// activity tools; the run waits holding no worker.
func TestWorkflowToolWaitsDurably(t *testing.T) {
	type waitArgs struct {
		Millis int `json:"millis"`
	}
	wait := agent.MustNewWorkflowTool("wait", "wait a while", func(ctx durable.Context, in waitArgs) (string, error) {
		if err := durable.Sleep(ctx, time.Duration(in.Millis)*time.Millisecond); err != nil {
			return "", err
		}
		return "waited", nil
	})
	a := &agent.Agent{Name: "waiter", WorkflowTools: []*agent.WorkflowTool{wait},
		Model: scripted.New(toolTurn(call("wait", `{"millis":300}`)), toolTurn(call("wait", `{"millis":"x"}`)), answer("done"))}
	e := newEnv(t, a)
	ctx := ctxT(t)
	run, err := e.rt.Start(ctx, a, "wait-1", agent.Input{Message: "wait"})
	require.NoError(t, err)
	e.waitStatus("wait-1", backend.StatusWaiting)
	res, err := run.Result(ctx)
	require.NoError(t, err)
	assert.Equal(t, "done", res.Text)
	require.GreaterOrEqual(t, len(res.Messages), 5, "messages")
	assert.Equal(t, `"waited"`, res.Messages[2].Content, "wait result")
	assert.Contains(t, res.Messages[4].Content, "millis", "bad arguments result: want the model told what is wrong")
}
