package cli_test

import (
	"context"
	"fmt"
	"os"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/cli"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/evals"
	"github.com/cairn-dev/cairn/providers"
)

// The tool mounted in a program with its workflow, checking a recorded
// history (written by "cairn history export") before a deploy. In a real
// program main is cli.Main(app), and the tool also reads runs from Redis.
func Example() {
	approve := durable.NewSignal[string]("approve")
	step := func(name string) *durable.Activity[string, string] {
		return durable.NewActivity(name, func(_ context.Context, in string) (string, error) { return name + "(" + in + ")", nil })
	}
	a, b := step("a"), step("b")
	flow := durable.NewWorkflow("flow", func(ctx durable.Context, in string) (string, error) {
		for _, act := range []*durable.Activity[string, string]{a, b} {
			var err error
			if in, err = durable.Execute(ctx, act, in); err != nil {
				return "", err
			}
		}
		who, err := approve.Receive(ctx)
		return in + " approved by " + who, err
	})

	app := cli.App{Name: "flow-ops", Workflows: []durable.WorkflowDefinition{flow}}
	code := app.Run(context.Background(), []string{"replay-check", "testdata/histories/flow_v1.json"}, os.Stdout, os.Stderr)
	fmt.Println("exit status", code)
	// Output:
	// OK        testdata/histories/flow_v1.json  flow  5 events
	// 1 history: 1 OK, 0 diverged, 0 not checked
	// exit status 0
}

// supportOps is how a program mounts the tool with its own agents, so that
// replay-check knows their code and decisions pass its Authorizer; its main
// calls it. Compiled, not run.
func supportOps(support *agent.Agent) {
	// snippet:cli
	cli.Main(cli.App{Name: "support-ops", Agents: []*agent.Agent{support}}) // in your program's main
	// end snippet:cli
}

// evalOps mounts the tool with an agent and the judge model its
// datasets' judge graders use: "support-ops eval support cases.yaml
// --baseline main.json --junit report.xml" then gates CI. Compiled, not
// run.
func evalOps(support *agent.Agent, judge providers.Model) {
	cli.Main(cli.App{
		Name:   "support-ops",
		Agents: []*agent.Agent{support},
		Evaluate: cli.RunnerEvaluator(func(r *evals.Runner) {
			r.Judge = judge
		}),
	})
}
