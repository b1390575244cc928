package cli_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/cli"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/tools"
)

// The flow workflows: three versions of one workflow, "flow", that runs
// activities on its input and then waits for an approve signal.
var (
	approveSignal = durable.NewSignal[string]("approve")
	actA, actB    = echoActivity("a"), echoActivity("b")
	actC          = echoActivity("c")
)

func echoActivity(name string) *durable.Activity[string, string] {
	return durable.NewActivity(name, func(_ context.Context, in string) (string, error) {
		return name + "(" + in + ")", nil
	})
}

func flowWorkflow(steps func(ctx durable.Context) []*durable.Activity[string, string]) *durable.Workflow[string, string] {
	return durable.NewWorkflow("flow", func(ctx durable.Context, in string) (string, error) {
		for _, act := range steps(ctx) {
			var err error
			if in, err = durable.Execute(ctx, act, in); err != nil {
				return "", err
			}
		}
		who, err := approveSignal.Receive(ctx)
		return in + " approved by " + who, err
	})
}

// flowV1 runs a then b. flowV2 runs a then c: changed without a guard, it
// cannot replay v1's runs. flowV3 makes the same change guarded by
// durable.Version: runs that started under v1 keep b, new runs take c.
func flowV1() *durable.Workflow[string, string] {
	return flowWorkflow(func(durable.Context) []*durable.Activity[string, string] {
		return []*durable.Activity[string, string]{actA, actB}
	})
}

func flowV2() *durable.Workflow[string, string] {
	return flowWorkflow(func(durable.Context) []*durable.Activity[string, string] {
		return []*durable.Activity[string, string]{actA, actC}
	})
}

func flowV3() *durable.Workflow[string, string] {
	return flowWorkflow(func(ctx durable.Context) []*durable.Activity[string, string] {
		if durable.Version(ctx, "c-instead-of-b", durable.DefaultVersion, 1) == 1 {
			return []*durable.Activity[string, string]{actA, actC}
		}
		return []*durable.Activity[string, string]{actA, actB}
	})
}

// startWorkerWith replaces the world's worker by one that runs the
// world's agents and wfs: a deploy of that code.
func (w *world) startWorkerWith(wfs ...durable.WorkflowDefinition) {
	w.stopWorker()
	wk := w.rt.NewWorker(durable.WorkerOptions{LeaseTTL: 2 * time.Second})
	wk.Register(wfs...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = wk.Run(ctx) }()
	w.stop = func() { cancel(); <-done }
}

// startFlow starts a run of wf and waits until it waits for approval.
func (w *world) startFlow(wf *durable.Workflow[string, string], runID string) {
	w.t.Helper()
	_, err := wf.Start(traced(), w.rt.Client(), runID, "x")
	require.NoError(w.t, err)
	w.waitStatus(runID, backend.StatusWaiting)
}

// export writes a run's history, as history export prints it, to
// dir/RUN.json and returns the file's name there.
func (w *world) export(runID, dir string) string {
	w.t.Helper()
	r := w.cairn("history", "export", runID)
	require.Equal(w.t, 0, r.code, "history export %s: exit status; stderr: %s", runID, r.err)
	name := runID + ".json"
	require.NoError(w.t, os.WriteFile(filepath.Join(dir, name), []byte(r.out), 0o644))
	return name
}

// with is the world's tool with other code: these workflows and agents.
func (w *world) with(wfs []durable.WorkflowDefinition, agents ...*agent.Agent) cli.App {
	app := w.app
	app.Workflows, app.Agents = wfs, agents
	return app
}

// checkApp runs app with args in the directory dir (default: the
// package's), checks its exit status, and compares its output with
// testdata/name.golden.
func checkApp(t *testing.T, app cli.App, name, dir string, wantCode int, args ...string) result {
	t.Helper()
	var r result
	if dir == "" {
		r = runApp(t, app, args...)
	} else {
		// In a subtest, whose end restores the directory, for golden()
		// to find testdata.
		t.Run(name, func(t *testing.T) {
			t.Chdir(dir)
			r = runApp(t, app, args...)
		})
	}
	assert.Equal(t, wantCode, r.code, "cairn %s: exit status\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.out, r.err)
	got := "$ cairn " + strings.Join(args, " ") + "\n" + stable(r.out)
	if r.err != "" {
		got += "--- stderr\n" + stable(r.err)
	}
	golden(t, name, got)
	return r
}

// fixture is the recorded history of a v1 run that TestReplayFixture
// keeps as a golden test. TestReplayCheckFlow writes it with -update if
// it is missing; it is not recorded again, since the histories of runs
// in flight are old ones: delete it to record it anew.
var fixture = filepath.Join("testdata", "histories", "flow_v1.json")

// TestReplayCheckFlow checks a run of flow v1, waiting for approval,
// against v1, the unguarded v2 and the guarded v3: from its exported
// history, from Redis by run id, and from Redis by workflow.
func TestReplayCheckFlow(t *testing.T) {
	w := newWorld(t, supportAgent())
	w.startWorkerWith(flowV1())
	w.startFlow(flowV1(), "flow-1")
	tmp := t.TempDir()
	file := w.export("flow-1", tmp)
	if _, err := os.Stat(fixture); *update && errors.Is(err, fs.ErrNotExist) {
		data, err := os.ReadFile(filepath.Join(tmp, file))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(fixture), 0o755))
		require.NoError(t, os.WriteFile(fixture, data, 0o644))
	}

	versions := []struct {
		name string
		wf   durable.WorkflowDefinition
		code int
	}{{"v1", flowV1(), cli.ExitOK}, {"v2", flowV2(), cli.ExitDiverged}, {"v3", flowV3(), cli.ExitOK}}
	for _, v := range versions {
		app := w.with([]durable.WorkflowDefinition{v.wf})
		r := checkApp(t, app, "replay_flow_"+v.name+"_file", tmp, v.code, "replay-check", file)
		checkApp(t, app, "replay_flow_"+v.name+"_run", tmp, v.code, "replay-check", "--run", "flow-1")
		checkApp(t, app, "replay_flow_"+v.name+"_workflow", tmp, v.code, "replay-check", "--workflow", "flow")
		if v.code == cli.ExitDiverged {
			for _, want := range []string{"DIVERGED", "- expected (history): activity b (step 2)",
				"+ actual   (code):    issued activity c (step 2)", "1 history: 0 OK, 1 diverged, 0 not checked"} {
				assert.Contains(t, r.out, want, "%s: the report", v.name)
			}
		}
	}
}

// TestReplayCheckDeploy follows a change through a deploy: v3 is
// deployed, a new run takes its new branch; both runs replay against v3,
// and a rollback to v1 would break the new run. Checking every run in
// flight skips the runs of workflows the program does not register and
// leaves ended runs out unless --all.
func TestReplayCheckDeploy(t *testing.T) {
	w := newWorld(t, supportAgent())
	w.startWorkerWith(flowV1())
	w.startFlow(flowV1(), "flow-0")
	require.NoError(t, approveSignal.Send(context.Background(), w.rt.Client(), "flow-0", "ann"))
	w.waitStatus("flow-0", backend.StatusCompleted)
	w.startFlow(flowV1(), "flow-1")
	w.startWorkerWith(flowV3())
	w.startFlow(flowV3(), "flow-2")
	w.start(supportAgent(), "refund-1", agent.Input{Message: "Refund my 120 euros."}, backend.StatusAwaitingApproval)

	v1, v3 := []durable.WorkflowDefinition{flowV1()}, []durable.WorkflowDefinition{flowV3()}
	checkApp(t, w.with(v3, supportAgent()), "replay_deploy_v3", "", cli.ExitOK, "replay-check")
	checkApp(t, w.with(v3), "replay_deploy_v3_skip", "", cli.ExitOK, "replay-check")
	checkApp(t, w.with(v1), "replay_deploy_rollback", "", cli.ExitDiverged, "replay-check", "--workflow", "flow", "--all")
	checkApp(t, w.with(v1), "replay_deploy_status", "", cli.ExitOK, "replay-check", "--status", "completed")
	checkApp(t, w.with(v1), "replay_unknown", "", cli.ExitFailure, "replay-check", "--run", "refund-1", "--run", "flow-1")
	checkApp(t, w.with(v1), "replay_unknown_skipped", "", cli.ExitOK, "replay-check", "--run", "refund-1", "--run", "flow-1", "--skip-unknown")
	checkApp(t, w.with(v1), "replay_unknown_workflow", "", cli.ExitUsage, "replay-check", "--workflow", "billing")
	checkApp(t, w.with(v1), "replay_no_run", "", cli.ExitFailure, "replay-check", "--run", "no-such-run")
	checkApp(t, w.with(v1), "replay_none", "", cli.ExitOK, "replay-check", "--status", "failed")
}

// renamedTool is the support agent with its lookup_order tool renamed
// find_order: runs that called lookup_order cannot replay against it.
func renamedTool() *agent.Agent {
	a := supportAgent()
	var tt []*tools.Tool
	for _, t := range a.Tools.List() {
		if t.Name() == "lookup_order" {
			type lookupArgs struct {
				OrderID string `json:"order_id"`
			}
			t = tools.MustNew("find_order", "Find an order.", func(ctx context.Context, in lookupArgs) (string, error) {
				return "order " + in.OrderID, nil
			})
		}
		tt = append(tt, t)
	}
	a.Tools = must(tools.NewSet(tt...))
	return a
}

// TestReplayCheckAgent checks an agent run waiting for approval against
// the same agent and against one whose tool was renamed.
func TestReplayCheckAgent(t *testing.T) {
	w := newWorld(t, supportAgent())
	w.start(supportAgent(), "refund-1", agent.Input{Message: "My pizza came cold, refund my 120 euros."},
		backend.StatusAwaitingApproval)
	tmp := t.TempDir()
	file := w.export("refund-1", tmp)
	checkApp(t, w.with(nil, supportAgent()), "replay_agent_ok", tmp, cli.ExitOK, "replay-check", file, "--run", "refund-1")
	r := checkApp(t, w.with(nil, renamedTool()), "replay_agent_diverged", tmp, cli.ExitDiverged, "replay-check", "--workflow", "support")
	assert.Contains(t, r.out, "DIVERGED  refund-1  support", "the renamed tool does not diverge")
}

// TestReplayCheckErrors: histories that cannot be read, and command lines
// that name nothing to check.
func TestReplayCheckErrors(t *testing.T) {
	tmp := t.TempDir()
	good, err := os.ReadFile(fixture)
	require.NoError(t, err)
	for name, data := range map[string]string{
		"truncated.json": `[{"v":1,"seq":1,"type":"run_started"`,
		"empty.json":     "[]\n",
		"good.json":      string(good),
	} {
		require.NoError(t, os.WriteFile(filepath.Join(tmp, name), []byte(data), 0o644))
	}
	noRedis := cli.App{Workflows: []durable.WorkflowDefinition{flowV1()}, Getenv: func(string) string { return "" }}
	r := checkApp(t, noRedis, "replay_corrupt", tmp, cli.ExitFailure, "replay-check", "truncated.json", "empty.json",
		"good.json", "missing.json")
	assert.Contains(t, r.out, "ERROR     truncated.json  not a history exported by history export", "no clear error for a truncated file")
	checkApp(t, noRedis, "replay_no_redis", "", cli.ExitUsage, "replay-check")
	checkApp(t, noRedis, "replay_run_no_redis", "", cli.ExitUsage, "replay-check", "--run", "flow-1")
	checkApp(t, noRedis, "replay_status_files", "", cli.ExitUsage, "replay-check", fixture, "--status", "waiting")
	checkApp(t, noRedis, "replay_bad_status", "", cli.ExitUsage, "replay-check", "--status", "sleeping")
	checkApp(t, noRedis, "replay_help", "", cli.ExitOK, "replay-check", "--help")
}

// TestReplayFixture is a golden test made of a recorded history: the
// history of a v1 run, exported with
//
//	cairn history export flow-1 > testdata/histories/flow_v1.json
//
// must replay against the code. Should v1 change incompatibly, the test
// fails with the diff before a deploy would park the runs. It needs no
// Redis.
func TestReplayFixture(t *testing.T) {
	app := cli.App{Workflows: []durable.WorkflowDefinition{flowV1()}, Getenv: func(string) string { return "" }}
	r := runApp(t, app, "replay-check", fixture)
	require.Equal(t, cli.ExitOK, r.code, "the recorded history does not replay:\n%s%s", r.out, r.err)
	// The same check without the tool, as a program's own test would do.
	f, err := os.Open(fixture)
	require.NoError(t, err)
	defer f.Close()
	history, err := backend.UnmarshalHistory(f)
	require.NoError(t, err)
	require.NoError(t, durable.ReplayHistory(flowV1(), history))
	assert.Error(t, durable.ReplayHistory(flowV2(), history), "the history replays against v2, which changed its second step")
}
