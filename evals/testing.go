package evals

import (
	"fmt"
	"strings"
	"testing"
)

// Run runs cases with r as subtests of t, one per case named after it
// (t.Run(case.Name)): a case that does not pass fails its subtest with
// its grades' explanations; a flaky one says so ("flaky: 2/3 trials
// passed"). An invalid dataset fails t at once.
func Run(t *testing.T, r *Runner, cases []Case) {
	t.Helper()
	rep, err := r.Run(t.Context(), cases)
	if err != nil {
		t.Fatalf("evals: %v", err)
	}
	for _, c := range rep.Cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Helper()
			if c.Status == StatusPass {
				return
			}
			t.Error(describeCase(c))
		})
	}
}

// describeCase says why a case did not pass.
func describeCase(c CaseReport) string {
	var b strings.Builder
	passed := 0
	for _, tr := range c.Trials {
		if tr.Pass {
			passed++
		}
	}
	switch c.Status {
	case StatusFlaky:
		fmt.Fprintf(&b, "flaky: %d/%d trials passed", passed, len(c.Trials))
	case StatusError:
		fmt.Fprintf(&b, "error: %s", c.Error)
	default:
		fmt.Fprintf(&b, "%s: %d/%d trials passed", c.Status, passed, len(c.Trials))
	}
	for _, tr := range c.Trials {
		if tr.Pass {
			continue
		}
		fmt.Fprintf(&b, "\ntrial %d (run %s):", tr.Trial, tr.RunID)
		if tr.Error != "" {
			fmt.Fprintf(&b, "\n  run failed: %s", tr.Error)
		}
		for _, g := range tr.Grades {
			if !g.Pass {
				fmt.Fprintf(&b, "\n  %s %.2f: %s", g.Grader, g.Value, g.Explanation)
			}
		}
		for _, n := range tr.Notes {
			fmt.Fprintf(&b, "\n  note: %s", n)
		}
	}
	return b.String()
}
