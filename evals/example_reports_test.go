package evals_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/evals"
)

// A dataset in YAML: matchers let a trajectory ignore volatile
// arguments ($any) or match them by pattern ($regex).
func ExampleDecode() {
	cases, err := evals.Decode(strings.NewReader(`
- name: refund cold pizza
  message: My pizza came cold, refund order A-1001.
  expect:
    trajectory:
      calls:
        - tool: refund
          args: {order_id: {$regex: '^A-\d+$'}, idempotency_key: {$any: true}, amount: 120}
  timeout: 1m
`), evals.FormatYAML)
	if err != nil {
		fmt.Println(err)
		return
	}
	c := cases[0]
	fmt.Println(c.Name, c.Timeout, c.Expect.Trajectory.Calls[0].Args["order_id"].Regex)

	_, err = evals.Decode(strings.NewReader(`- {name: b, message: hi, expect: {trajectory: {mode: roughly, calls: []}}}`), evals.FormatYAML)
	fmt.Println(err)
	// Output:
	// refund cold pizza 1m0s ^A-\d+$
	// line 1: case "b": trajectory mode "roughly": want exact, in_order, any_order or subset
}

// A report compared with the one before: a case that passed and now
// fails is a regression, which fails the CI gate; a flaky case is not.
func ExampleCompare() {
	before := &evals.Report{Agent: "support", Cases: []evals.CaseReport{
		{Name: "refund", Status: evals.StatusPass, PassRate: 1},
		{Name: "hours", Status: evals.StatusPass, PassRate: 1},
	}}
	now := &evals.Report{Agent: "support", Duration: 2 * time.Second, Cases: []evals.CaseReport{
		{Name: "refund", Status: evals.StatusFail, Trials: []evals.TrialReport{{Trial: 1, Grades: []evals.Grade{
			{Grader: "contains", Score: evals.Score{Explanation: `no "refunded" in the answer`}}}}}},
		{Name: "hours", Status: evals.StatusFlaky, PassRate: 0.5},
	}}
	cmp := evals.Compare(before, now)
	_ = cmp.WriteText(os.Stdout)
	fmt.Println("fail the build:", cmp.Failed())
	// Output:
	// CHANGE      CASE    BEFORE     AFTER
	// regression  refund  pass 100%  fail 0%
	// flaky       hours   pass 100%  flaky 50%
	//
	// Against the baseline: 1 regression, 0 improvements, 0 unchanged, 1 flaky, 0 new, 0 removed
	// fail the build: true
}
