package evals_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/evals"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// benchAgent is a scripted support agent: a lookup, a refund, an answer.
func benchAgent(b *testing.B) *agent.Agent {
	var s world
	return supportAgent(b, &s, 2000, true)
}

// BenchmarkAgentAlone runs the agent as a program would: a runtime and a
// worker on a fresh in-memory store per run, the run started and its
// result awaited. It is the baseline of BenchmarkRunnerPerCase.
func BenchmarkAgentAlone(b *testing.B) {
	a := benchAgent(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		store := inmem.New()
		rt := agent.NewRuntime(store, agent.Options{Logger: quiet()})
		if err := rt.Register(a); err != nil {
			b.Fatal(err)
		}
		wctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		w := rt.NewWorker(durable.WorkerOptions{})
		go func() { defer close(done); _ = w.Run(wctx) }()
		run, err := rt.Start(ctx, a, fmt.Sprintf("run-%d", i), agent.Input{Message: "refund"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := run.Result(ctx); err != nil {
			b.Fatal(err)
		}
		stop()
		<-done
	}
}

// BenchmarkRunnerPerCase runs the same agent as one-case datasets: the
// difference with BenchmarkAgentAlone is the runner's overhead per case
// (approval watcher, tool wrapping, history read, grading).
func BenchmarkRunnerPerCase(b *testing.B) {
	r := &evals.Runner{Agent: benchAgent(b), Concurrency: 1}
	cases := []evals.Case{{Name: "refund", Message: "refund", Expect: evals.Expect{Contains: []string{"Refunded"}}}}
	ctx := context.Background()
	for b.Loop() {
		rep, err := r.Run(ctx, cases)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Cases[0].Status != evals.StatusPass {
			b.Fatalf("%+v", rep.Cases[0])
		}
	}
}

// BenchmarkDataset200 runs a 200-case dataset against a model that takes
// 5 ms per call (3 calls a case), at concurrency 1 and 8.
func BenchmarkDataset200(b *testing.B) {
	sleepy := scripted.Func(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		time.Sleep(5 * time.Millisecond)
		switch scripted.Turn(req) {
		case 0:
			return toolTurn("lookup_order", `{"order_id":"A-1001"}`), nil
		case 1:
			return toolTurn("refund", `{"order_id":"A-1001","cents":2000}`), nil
		}
		return answer("Refunded."), nil
	})
	var s world
	a := &agent.Agent{Name: "support", Model: sleepy, Tools: s.tools(b, true)}
	cases := make([]evals.Case, 200)
	for i := range cases {
		cases[i] = evals.Case{Name: fmt.Sprintf("case-%03d", i), Message: "refund", Expect: evals.Expect{Text: "Refunded."}}
	}
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			r := &evals.Runner{Agent: a, Concurrency: conc}
			for b.Loop() {
				rep, err := r.Run(context.Background(), cases)
				if err != nil {
					b.Fatal(err)
				}
				for _, c := range rep.Cases {
					if c.Status != evals.StatusPass {
						b.Fatalf("%+v", c)
					}
				}
			}
		})
	}
}
