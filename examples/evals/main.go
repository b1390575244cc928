// Evals evaluates the support desk of examples/approval before a deploy:
// it runs a dataset of cases (dataset.yaml, plus one case recorded from a
// "production" run) as real durable runs of the agent, grades each trial,
// and writes the reports.
//
// The cases check the tool trajectory (lookup_order, then refund, with the
// refund's reason free), the answer's text, a turn budget, a judge's
// rubric, and crash safety (the worker swapped at journal boundaries, the
// refund made once). One case is flaky on purpose: its model words the
// answer differently from one call to the next, and the report says so,
// rather than calling it a regression. The recorded case re-runs a
// production run from its last model call: the lookup and the refund come
// from the journal, only the answer is asked again.
//
//	go run ./examples/evals                        # no setup: scripted model, scripted judge
//	go run ./examples/evals -out reports           # where the reports go (default: a temporary directory)
//	go run ./examples/evals -baseline reports/report.json
//
// It prints a table and writes report.json, junit.xml and report.html. With
// -baseline it compares with an earlier report.json and exits 1 on a
// regression, as a CI gate would.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/evals"
	"github.com/cairn-dev/cairn/examples/internal/support"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

//go:embed dataset.yaml
var dataset []byte

func main() {
	out := flag.String("out", "", "the directory to write the reports in (default: a new temporary directory)")
	baseline := flag.String("baseline", "", "an earlier report.json to compare with")
	flag.Parse()
	failed, err := run(context.Background(), os.Stdout, *out, *baseline)
	if err != nil {
		fmt.Fprintln(os.Stderr, "evals:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// run evaluates the agent and writes the reports in dir. It says whether
// the comparison with the baseline, if any, found a regression.
func run(ctx context.Context, w io.Writer, dir, baseline string) (failed bool, err error) {
	cases, err := evals.Decode(bytes.NewReader(dataset), "yaml")
	if err != nil {
		return false, fmt.Errorf("dataset.yaml: %w", err)
	}
	recorded, err := recordedCase(ctx)
	if err != nil {
		return false, err
	}
	cases = append(cases, recorded)

	pay := support.NewPayments(io.Discard)
	runner := &evals.Runner{
		Agent:          support.NewAgent(varyingModel(), pay),
		Judge:          scriptedJudge(),
		Concurrency:    4,
		MaxCrashPoints: 6,
	}
	report, err := runner.Run(ctx, cases)
	if err != nil {
		return false, err
	}
	if err := report.WriteText(w); err != nil {
		return false, err
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cairn-evals-"); err != nil {
			return false, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	for name, write := range map[string]func(io.Writer) error{
		"report.json": report.WriteJSON, "junit.xml": report.WriteJUnit, "report.html": report.WriteHTML,
	} {
		if err := writeFile(filepath.Join(dir, name), write); err != nil {
			return false, err
		}
	}
	fmt.Fprintf(w, "\nReports: %s (report.json, junit.xml, report.html)\n", dir)
	if baseline == "" {
		return false, nil
	}
	f, err := os.Open(baseline)
	if err != nil {
		return false, err
	}
	defer f.Close()
	base, err := evals.ReadReport(f)
	if err != nil {
		return false, fmt.Errorf("%s: %w", baseline, err)
	}
	cmp := evals.Compare(base, report)
	fmt.Fprintln(w)
	if err := cmp.WriteText(w); err != nil {
		return false, err
	}
	return cmp.Failed(), nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// varyingModel is the support desk's scripted model, except that in the
// flaky case it ends its answer one way on odd calls and another on even
// ones, as a real model at a temperature above zero may.
func varyingModel() providers.Model {
	base := support.Scripted()
	var mu sync.Mutex
	calls := 0
	return scripted.Func(func(ctx context.Context, req providers.Request) (providers.Response, error) {
		resp, err := base.Generate(ctx, req)
		if err != nil || len(resp.Message.ToolCalls) > 0 || !strings.Contains(req.Messages[0].Content, "again") {
			return resp, err
		}
		mu.Lock()
		calls++
		odd := calls%2 == 1
		mu.Unlock()
		if !odd {
			resp.Message.Content = strings.Replace(resp.Message.Content, "Sorry about the cold pizza!", "Enjoy your next one!", 1)
		}
		return resp, nil
	})
}

// scriptedJudge stands in for a judge model: it gives full marks to an
// answer that says how much was refunded and the refund's id.
func scriptedJudge() providers.Model {
	return scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
		answer := req.Messages[len(req.Messages)-1].Content
		verdict := `{"score": 0, "label": "fail", "rationale": "the answer does not say what was refunded"}`
		if strings.Contains(answer, "euros") && strings.Contains(answer, "refund R-") {
			verdict = `{"score": 1, "label": "pass", "rationale": "it states the amount, 120 euros, and the refund's id"}`
		}
		return providers.Response{Message: providers.Message{Content: verdict}}, nil
	})
}

// recordedCase runs the agent once as production would (its own store,
// a manager approving), and turns that run into a case that re-runs it
// from its last model call: what came before comes from the journal.
func recordedCase(ctx context.Context) (evals.Case, error) {
	store := inmem.New()
	rt := agent.NewRuntime(store, agent.Options{})
	prod := support.NewAgent(support.Scripted(), support.NewPayments(io.Discard))
	if err := rt.Register(prod); err != nil {
		return evals.Case{}, err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go rt.NewWorker(durable.WorkerOptions{}).Run(ctx)
	run, err := rt.Start(ctx, prod, "prod-4711", agent.Input{Message: "Order A-1001 came cold, please refund it."})
	if err != nil {
		return evals.Case{}, err
	}
	if err := approveAll(ctx, rt, run.ID); err != nil {
		return evals.Case{}, err
	}
	if _, err := run.Result(ctx); err != nil {
		return evals.Case{}, err
	}
	history, err := run.History(ctx)
	if err != nil {
		return evals.Case{}, err
	}
	c, err := evals.CaseFromHistory("replayed-from-production", history, evals.RecordOptions{Volatile: []string{"reason"}})
	if err != nil {
		return evals.Case{}, err
	}
	c.Replay.From = lastModelStep(history)
	// The answer is asked again, so its words may change: what must stay
	// is the refund it reports.
	c.Expect.Text, c.Expect.Contains = "", []string{"refunded 120.00 euros"}
	return c, nil
}

// lastModelStep is the step of the last model call of a history.
func lastModelStep(history []backend.Event) int {
	step := 0
	for _, e := range history {
		if e.Type == backend.EventActivityScheduled && strings.HasPrefix(e.Name, "model:") {
			step = e.Step
		}
	}
	return step
}

// approveAll approves, as a manager, the calls the run waits for, until
// it has ended. The record is read before the pending calls, so that
// WaitChange cannot miss a request made in between.
func approveAll(ctx context.Context, rt *agent.Runtime, runID string) error {
	for {
		info, err := rt.Client().Describe(ctx, runID)
		if err != nil {
			return err
		}
		if info.Status.Terminal() {
			return nil
		}
		pending, err := rt.Pending(ctx, agent.PendingFilter{RunID: runID})
		if err != nil {
			return err
		}
		for _, p := range pending {
			if err := rt.Decide(ctx, runID, agent.Decision{CallID: p.CallID, Approved: true, By: "manager"}); err != nil && !errors.Is(err, agent.ErrNotPending) {
				return err
			}
		}
		if err := rt.Client().WaitChange(ctx, info); err != nil {
			return err
		}
	}
}
