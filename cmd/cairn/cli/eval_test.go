package cli_test

import (
	"cmp"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/cli"
	"github.com/cairn-dev/cairn/evals"
	"github.com/cairn-dev/cairn/internal/redistest"
)

// fakeEvaluator grades cases by their names: a name in fail fails, one
// in flaky passes one trial in two, the others pass. It keeps what it was
// given.
type fakeEvaluator struct {
	fail, flaky []string
	agent       string
	cases       []string
	opts        cli.EvalOptions
}

func (f *fakeEvaluator) evaluate(_ context.Context, a *agent.Agent, cases []evals.Case, opts cli.EvalOptions) (*evals.Report, error) {
	f.agent, f.opts = a.Name, opts
	r := &evals.Report{Agent: a.Name, Started: time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC), Duration: 3 * time.Second}
	for _, c := range cases {
		f.cases = append(f.cases, c.Name)
		trials := cmp.Or(c.Trials, opts.Trials, 1)
		cr := evals.CaseReport{Name: c.Name, Tags: c.Tags, Status: evals.StatusPass}
		passed := 0
		for i := 1; i <= trials; i++ {
			pass := !slices.Contains(f.fail, c.Name) && !(slices.Contains(f.flaky, c.Name) && i%2 == 0)
			g := evals.Grade{Grader: "contains", Score: evals.Score{Value: 1, Pass: true, Label: "pass"}}
			if !pass {
				g.Score = evals.Score{Value: 0, Pass: false, Label: "fail", Explanation: `the answer does not contain "refunded"`}
			} else {
				passed++
			}
			cr.Trials = append(cr.Trials, evals.TrialReport{Trial: i, RunID: fmt.Sprintf("eval-%d", i), Pass: pass,
				Grades: []evals.Grade{g}, Text: "Done.", Tokens: 500, Turns: 2, Latency: 800 * time.Millisecond})
		}
		cr.PassRate = float64(passed) / float64(trials)
		switch {
		case passed == 0:
			cr.Status = evals.StatusFail
		case passed < trials:
			cr.Status = evals.StatusFlaky
		}
		r.Cases = append(r.Cases, cr)
	}
	return r, nil
}

// evalApp is a program with the support agent and the fake evaluator.
func evalApp(f *fakeEvaluator) cli.App {
	return cli.App{Agents: []*agent.Agent{supportAgent()}, Evaluate: f.evaluate}
}

// checkEval runs a command line and compares its output with a golden
// file, as world.check does, with the directory dir, if given, as $DIR.
func checkEval(t *testing.T, app cli.App, dir, name string, wantCode int, args ...string) result {
	t.Helper()
	r := runApp(t, app, args...)
	assert.Equal(t, wantCode, r.code, "cairn %s: exit status\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.out, r.err)
	clean := func(s string) string {
		if dir == "" {
			return s
		}
		return strings.ReplaceAll(s, dir, "$DIR")
	}
	got := "$ cairn " + clean(strings.Join(args, " ")) + "\n" + clean(r.out)
	if r.err != "" {
		got += "--- stderr\n" + clean(r.err)
	}
	golden(t, name, got)
	return r
}

func TestEval(t *testing.T) {
	f := &fakeEvaluator{}
	checkEval(t, evalApp(f), "", "eval_pass", 0, "eval", "support", "testdata/eval/support.jsonl", "testdata/eval/more.yaml",
		"--concurrency", "4", "--redis", "redis://127.0.0.1:6379/0")
	assert.Equal(t, "support", f.agent)
	assert.Equal(t, []string{"refund cold pizza", "opening hours", "refund twice"}, f.cases)
	assert.Equal(t, 4, f.opts.Concurrency)
	assert.Equal(t, "redis://127.0.0.1:6379/0", f.opts.Redis)

	f = &fakeEvaluator{flaky: []string{"opening hours"}}
	checkEval(t, evalApp(f), "", "eval_flaky", 0, "eval", "support", "testdata/eval/support.jsonl", "--trials", "2")
	assert.Equal(t, 2, f.opts.Trials)

	f = &fakeEvaluator{fail: []string{"refund twice"}}
	checkEval(t, evalApp(f), "", "eval_fail", 1, "eval", "support", "testdata/eval/more.yaml", "testdata/eval/support.jsonl")

	f = &fakeEvaluator{}
	checkEval(t, evalApp(f), "", "eval_tags", 0, "eval", "support", "testdata/eval/support.jsonl", "testdata/eval/more.yaml", "--tags", "refund,other")
	assert.Equal(t, []string{"refund cold pizza", "refund twice"}, f.cases, "--tags keeps the cases with one of them")
}

func TestEvalReportsAndBaseline(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "baseline.json")
	datasets := []string{"testdata/eval/support.jsonl", "testdata/eval/more.yaml"}

	// A first run writes the baseline and the reports.
	args := append([]string{"eval", "support"}, datasets...)
	args = append(args, "--json", base, "--junit", filepath.Join(dir, "report.xml"), "--html", filepath.Join(dir, "report.html"))
	checkEval(t, evalApp(&fakeEvaluator{}), dir, "eval_reports", 0, args...)
	data, err := os.ReadFile(base)
	require.NoError(t, err)
	r, err := evals.ReadReport(strings.NewReader(string(data)))
	require.NoError(t, err)
	assert.Len(t, r.Cases, 3, "the JSON report")
	data, err = os.ReadFile(filepath.Join(dir, "report.xml"))
	require.NoError(t, err)
	var suites struct {
		Tests int `xml:"tests,attr"`
	}
	require.NoError(t, xml.Unmarshal(data, &suites), "the JUnit XML")
	assert.Equal(t, 5, suites.Tests, "the JUnit XML: a testcase per trial")
	data, err = os.ReadFile(filepath.Join(dir, "report.html"))
	require.NoError(t, err)
	assert.Contains(t, string(data), "<!DOCTYPE html>", "the HTML page")

	// The next run: a case regressed, one turned flaky.
	f := &fakeEvaluator{fail: []string{"refund cold pizza"}, flaky: []string{"opening hours"}}
	checkEval(t, evalApp(f), dir, "eval_regression", 1, append(append([]string{"eval", "support"}, datasets...), "--baseline", base)...)

	// A flaky case alone passes the gate.
	f = &fakeEvaluator{flaky: []string{"opening hours"}}
	checkEval(t, evalApp(f), dir, "eval_baseline_flaky", 0, append(append([]string{"eval", "support"}, datasets...), "--baseline", base)...)
}

func TestEvalErrors(t *testing.T) {
	f := &fakeEvaluator{}
	app := evalApp(f)
	checkEval(t, app, "", "eval_unknown_agent", 2, "eval", "billing", "testdata/eval/support.jsonl")
	checkEval(t, cli.App{}, "", "eval_no_agents", 2, "eval", "support", "testdata/eval/support.jsonl")
	checkEval(t, app, "", "eval_no_dataset", 2, "eval", "support")
	checkEval(t, app, "", "eval_bad_dataset", 1, "eval", "support", "testdata/eval/support.jsonl", "testdata/eval/bad.jsonl")
	checkEval(t, app, "", "eval_duplicate", 1, "eval", "support", "testdata/eval/support.jsonl", "testdata/eval/dup.yaml")
	checkEval(t, app, "", "eval_no_tags", 1, "eval", "support", "testdata/eval/support.jsonl", "--tags", "billing")
	checkEval(t, app, "", "eval_no_baseline", 1, "eval", "support", "testdata/eval/support.jsonl", "--baseline", "testdata/eval/missing.json")
	checkEval(t, cli.App{Agents: []*agent.Agent{supportAgent()}}, "", "eval_runner_no_judge", 1, "eval", "support", "testdata/eval/support.jsonl")
	checkEval(t, app, "", "eval_help", 0, "eval", "--help")
	assert.Empty(t, f.cases, "nothing ran")
}

// TestEvalRunner runs cairn eval with its own evaluator, an evals.Runner,
// in memory and on Redis: the refund approved by its case passes; the
// one no approval rule decides is rejected, and fails.
func TestEvalRunner(t *testing.T) {
	t.Parallel()
	app := cli.App{Agents: []*agent.Agent{supportAgent()}}
	r := runApp(t, app, "eval", "support", "testdata/eval/runner.yaml", "--concurrency", "2")
	assert.Equal(t, 1, r.code, "exit status\nstdout:\n%s\nstderr:\n%s", r.out, r.err)
	assert.Regexp(t, `refund cold pizza\s+pass\s+1/1\s+contains 1/1, trajectory 1/1`, r.out)
	assert.Regexp(t, `refund rejected\s+fail\s+0/1`, r.out)
	assert.Contains(t, r.err, "cairn eval: 1 case failed")

	srv := redistest.Start(t)
	r = runApp(t, app, "eval", "support", "testdata/eval/runner.yaml", "--redis", srv.URL(), "--trials", "2", "--tags", "other,reject")
	assert.Equal(t, 1, r.code, "exit status\nstdout:\n%s\nstderr:\n%s", r.out, r.err)
	assert.Regexp(t, `refund rejected\s+fail\s+0/2`, r.out)
	assert.NotContains(t, r.out, "refund cold pizza", "--tags")
	opts, err := goredis.ParseURL(srv.URL())
	require.NoError(t, err)
	client := goredis.NewClient(opts)
	defer client.Close()
	keys, err := client.Keys(context.Background(), "cairn-eval:*").Result()
	require.NoError(t, err)
	assert.NotEmpty(t, keys, "the trials' runs are in Redis, under cairn-eval:")

	r = runApp(t, app, "eval", "support", "testdata/eval/runner.yaml", "--redis", "redis://127.0.0.1:1/0")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err, "cairn eval: run the cases: cannot reach Redis at redis://127.0.0.1:1/0")
}
