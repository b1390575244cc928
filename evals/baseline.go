package evals

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Change is what became of a case from a baseline report to the current
// one.
type Change string

// The changes Compare finds.
const (
	// Regression: the case passed in the baseline and fails, or errs,
	// now.
	Regression Change = "regression"
	// Improvement: the case failed, or erred, in the baseline and
	// passes now.
	Improvement Change = "improvement"
	// Unchanged: the case has the same outcome, passing or not, in both.
	Unchanged Change = "unchanged"
	// Flaky: the case is flaky in one report or both, so neither a
	// regression nor an improvement can be told.
	Flaky Change = "flaky"
	// New: the case is not in the baseline.
	New Change = "new"
	// Removed: the case is in the baseline only.
	Removed Change = "removed"
)

// CaseChange is one case in a Comparison. Before and After are the
// case's status and pass rate in the baseline and now; a status is ""
// where the case is absent.
type CaseChange struct {
	Name       string  `json:"name"`
	Change     Change  `json:"change"`
	Before     Status  `json:"before,omitempty"`
	After      Status  `json:"after,omitempty"`
	BeforeRate float64 `json:"before_rate"`
	AfterRate  float64 `json:"after_rate"`
}

// Comparison is a report compared with a baseline, case by case (by
// name): the current report's cases in their order, then the removed
// ones in the baseline's order.
type Comparison struct {
	Cases []CaseChange `json:"cases"`
}

// Compare compares the current report with a baseline, case by case, by
// name. A case flaky in either report is Flaky, never a Regression: a
// flaky case passing in the baseline and failing now, or the reverse,
// is what flaky means. Otherwise a passing case that now fails or errs
// is a Regression, the reverse an Improvement, and a case that passes,
// or does not, in both is Unchanged (failing and erring count alike).
// A nil baseline makes every case New.
func Compare(baseline, current *Report) Comparison {
	var before []CaseReport
	if baseline != nil {
		before = baseline.Cases
	}
	old := make(map[string]*CaseReport, len(before))
	for i := range before {
		old[before[i].Name] = &before[i]
	}
	var cmp Comparison
	seen := map[string]bool{}
	for _, c := range current.Cases {
		seen[c.Name] = true
		ch := CaseChange{Name: c.Name, After: c.Status, AfterRate: c.PassRate}
		b, ok := old[c.Name]
		switch {
		case !ok:
			ch.Change = New
		case b.Status == StatusFlaky || c.Status == StatusFlaky:
			ch.Change = Flaky
		case b.Status == StatusPass && c.Status != StatusPass:
			ch.Change = Regression
		case b.Status != StatusPass && c.Status == StatusPass:
			ch.Change = Improvement
		default:
			ch.Change = Unchanged
		}
		if ok {
			ch.Before, ch.BeforeRate = b.Status, b.PassRate
		}
		cmp.Cases = append(cmp.Cases, ch)
	}
	for _, b := range before {
		if !seen[b.Name] {
			cmp.Cases = append(cmp.Cases, CaseChange{Name: b.Name, Change: Removed, Before: b.Status, BeforeRate: b.PassRate})
		}
	}
	return cmp
}

// Count counts the cases with the change.
func (c Comparison) Count(change Change) int {
	n := 0
	for _, ch := range c.Cases {
		if ch.Change == change {
			n++
		}
	}
	return n
}

// Failing counts the current cases that fail or err (a flaky case does
// not: some of its trials pass).
func (c Comparison) Failing() int {
	n := 0
	for _, ch := range c.Cases {
		if ch.After == StatusFail || ch.After == StatusError {
			n++
		}
	}
	return n
}

// Failed reports whether the comparison should fail a CI gate: a case
// regressed, or a current case fails or errs (it missed a grader's
// threshold in every trial, or could not be run), whatever the baseline
// says. Flaky cases do not fail it; the reports list them.
func (c Comparison) Failed() bool {
	return c.Count(Regression) > 0 || c.Failing() > 0
}

// WriteText writes the comparison for a terminal: the cases that
// changed (regressions first, then improvements, flaky, new and removed
// cases), each with its status and pass rate before and after, then a
// line with the count of each change.
func (c Comparison) WriteText(w io.Writer) error {
	order := []Change{Regression, Improvement, Flaky, New, Removed}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rows := 0
	for _, change := range order {
		for _, ch := range c.Cases {
			if ch.Change != change {
				continue
			}
			if rows == 0 {
				fmt.Fprintln(tw, "CHANGE\tCASE\tBEFORE\tAFTER")
			}
			rows++
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ch.Change, oneLine(ch.Name), statusRate(ch.Before, ch.BeforeRate), statusRate(ch.After, ch.AfterRate))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rows > 0 {
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintf(w, "Against the baseline: %d %s, %d %s, %d unchanged, %d flaky, %d new, %d removed\n",
		c.Count(Regression), plural(c.Count(Regression), "regression", "regressions"),
		c.Count(Improvement), plural(c.Count(Improvement), "improvement", "improvements"),
		c.Count(Unchanged), c.Count(Flaky), c.Count(New), c.Count(Removed))
	return err
}

// statusRate reads "flaky 67%", or "-" for an absent case.
func statusRate(s Status, rate float64) string {
	if s == "" {
		return "-"
	}
	return fmt.Sprintf("%s %.0f%%", s, rate*100)
}
