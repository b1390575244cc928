package evals_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/evals"
)

// report makes a report of cases with the statuses given, in order.
func report(cases ...evals.CaseReport) *evals.Report {
	return &evals.Report{Agent: "support", Cases: cases}
}

func caseWith(name string, s evals.Status, rate float64) evals.CaseReport {
	return evals.CaseReport{Name: name, Status: s, PassRate: rate}
}

func TestCompare(t *testing.T) {
	baseline := report(
		caseWith("still passes", evals.StatusPass, 1),
		caseWith("regressed", evals.StatusPass, 1),
		caseWith("errs now", evals.StatusPass, 1),
		caseWith("fixed", evals.StatusFail, 0),
		caseWith("was flaky", evals.StatusFlaky, 0.5),
		caseWith("turned flaky", evals.StatusPass, 1),
		caseWith("still fails", evals.StatusFail, 0),
		caseWith("gone", evals.StatusPass, 1),
	)
	current := report(
		caseWith("still passes", evals.StatusPass, 1),
		caseWith("regressed", evals.StatusFail, 0),
		caseWith("errs now", evals.StatusError, 0),
		caseWith("fixed", evals.StatusPass, 1),
		caseWith("was flaky", evals.StatusFail, 0),
		caseWith("turned flaky", evals.StatusFlaky, 2.0/3),
		caseWith("still fails", evals.StatusError, 0),
		caseWith("added", evals.StatusPass, 1),
	)
	cmp := evals.Compare(baseline, current)
	changes := map[string]evals.Change{}
	for _, c := range cmp.Cases {
		changes[c.Name] = c.Change
	}
	assert.Equal(t, map[string]evals.Change{
		"still passes": evals.Unchanged,
		"regressed":    evals.Regression,
		"errs now":     evals.Regression,
		"fixed":        evals.Improvement,
		"was flaky":    evals.Flaky,
		"turned flaky": evals.Flaky,
		"still fails":  evals.Unchanged,
		"added":        evals.New,
		"gone":         evals.Removed,
	}, changes)
	assert.Equal(t, evals.CaseChange{Name: "gone", Change: evals.Removed, Before: evals.StatusPass, BeforeRate: 1}, cmp.Cases[len(cmp.Cases)-1],
		"removed cases come last")
	assert.True(t, cmp.Failed(), "regressions fail the gate")
	assert.Equal(t, 4, cmp.Failing(), "regressed, errs now, was flaky, still fails")

	var buf bytes.Buffer
	require.NoError(t, cmp.WriteText(&buf))
	assert.Equal(t, `CHANGE       CASE          BEFORE     AFTER
regression   regressed     pass 100%  fail 0%
regression   errs now      pass 100%  error 0%
improvement  fixed         fail 0%    pass 100%
flaky        was flaky     flaky 50%  fail 0%
flaky        turned flaky  pass 100%  flaky 67%
new          added         -          pass 100%
removed      gone          pass 100%  -

Against the baseline: 2 regressions, 1 improvement, 2 unchanged, 2 flaky, 1 new, 1 removed
`, buf.String())
}

func TestCompareGate(t *testing.T) {
	flakyOnly := evals.Compare(report(caseWith("a", evals.StatusPass, 1)), report(caseWith("a", evals.StatusFlaky, 0.5)))
	assert.False(t, flakyOnly.Failed(), "a case that turned flaky does not fail the gate")

	failingNew := evals.Compare(report(), report(caseWith("b", evals.StatusFail, 0)))
	assert.True(t, failingNew.Failed(), "a new failing case fails the gate")

	noBaseline := evals.Compare(nil, report(caseWith("a", evals.StatusPass, 1)))
	assert.Equal(t, []evals.CaseChange{{Name: "a", Change: evals.New, After: evals.StatusPass, AfterRate: 1}}, noBaseline.Cases)
	assert.False(t, noBaseline.Failed())

	var buf bytes.Buffer
	require.NoError(t, evals.Compare(report(caseWith("a", evals.StatusPass, 1)), report(caseWith("a", evals.StatusPass, 1))).WriteText(&buf))
	assert.Equal(t, "Against the baseline: 0 regressions, 0 improvements, 1 unchanged, 0 flaky, 0 new, 0 removed\n", buf.String())
}
