package evals_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/evals"
)

// hostile is text from a model that a report must show as text.
const hostile = `<script>alert("x")</script> & ]]> <!-- --> {{.}}` + "\x00\x1b[31m"

// sampleReport has a case of each status: one that passes, a flaky one
// (a judge failed one trial of three), a failing one (a wrong trajectory,
// a trial with an error) and one that could not run.
func sampleReport() *evals.Report {
	pass := func(grader string) evals.Grade {
		return evals.Grade{Grader: grader, Score: evals.Score{Value: 1, Pass: true, Label: "pass"}}
	}
	calls := []evals.Call{
		{ID: "call_1_0", Tool: "lookup_order", Arguments: `{"order_id":"A-1001"}`, Result: "order A-1001: 2 pizzas, 120 euros"},
		{ID: "call_2_0", Tool: "refund", Arguments: `{"order_id":"A-1001","amount":120}`, Result: "refunded 120 euros"},
	}
	return &evals.Report{
		Agent:    "support",
		Started:  time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC),
		Duration: 4200 * time.Millisecond,
		Cases: []evals.CaseReport{{
			Name: "refund cold pizza", Tags: []string{"refund"}, Status: evals.StatusPass, PassRate: 1,
			Trials: []evals.TrialReport{
				{Trial: 1, RunID: "eval-refund-1", Pass: true, Grades: []evals.Grade{pass("contains"), pass("trajectory")},
					Text: "Done: refunded 120 euros.", Calls: calls, Tokens: 812, Turns: 3, Latency: 1200 * time.Millisecond},
				{Trial: 2, RunID: "eval-refund-2", Pass: true, Grades: []evals.Grade{pass("contains"), pass("trajectory")},
					Text: "Done: refunded 120 euros.", Calls: calls, Tokens: 820, Turns: 3, Latency: 1300 * time.Millisecond},
			},
		}, {
			Name: "opening hours", Status: evals.StatusFlaky, PassRate: 2.0 / 3,
			Trials: []evals.TrialReport{
				{Trial: 1, RunID: "eval-hours-1", Pass: true, Grades: []evals.Grade{pass("regex"),
					{Grader: "judge", Score: evals.Score{Value: 0.9, Pass: true, Label: "polite", Explanation: "Short and polite."}}},
					Text: "We open at 9am.", Tokens: 400, Turns: 1, Latency: 700 * time.Millisecond},
				{Trial: 2, RunID: "eval-hours-2", Pass: false, Grades: []evals.Grade{pass("regex"),
					{Grader: "judge", Score: evals.Score{Value: 0.4, Pass: false, Label: "curt", Explanation: "The answer is curt:\nno greeting."}}},
					Text: "9am.", Tokens: 380, Turns: 1, Latency: 650 * time.Millisecond},
				{Trial: 3, RunID: "eval-hours-3", Pass: true, Grades: []evals.Grade{pass("regex"),
					{Grader: "judge", Score: evals.Score{Value: 0.8, Pass: true, Label: "polite", Explanation: "Fine."}}},
					Text: "Hello! We open at 9:00.", Tokens: 410, Turns: 1, Latency: 720 * time.Millisecond},
			},
		}, {
			Name: "refund twice", Status: evals.StatusFail, PassRate: 0,
			Trials: []evals.TrialReport{
				{Trial: 1, RunID: "eval-twice-1", Pass: false, Grades: []evals.Grade{
					{Grader: "trajectory", Score: evals.Score{Value: 0.5, Pass: false, Label: "fail", Explanation: "call 2: want refund, got lookup_order"}}},
					Notes: []string{"refund waited for approval and no rule decided it: rejected"}, Crash: 2,
					Text: hostile, Calls: calls[:1], Tokens: 600, Turns: 2, Latency: 900 * time.Millisecond},
				{Trial: 2, RunID: "eval-twice-2", Pass: false, Error: "model: 429 Too Many Requests", Tokens: 0, Latency: 50 * time.Millisecond},
			},
		}, {
			Name: "judge down", Status: evals.StatusError, Error: "judge: no answer after 3 tries",
		}},
	}
}

// checkGolden compares got with testdata/name, or writes it with -update
// (declared in replay_test.go).
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to write %s", path)
	assert.Equal(t, string(want), string(got), "%s (run with -update to rewrite it)", path)
}

func TestWriteText(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, sampleReport().WriteText(&buf))
	checkGolden(t, "report.txt", buf.Bytes())
}

func TestWriteTextControlCharacters(t *testing.T) {
	r := &evals.Report{Agent: "a", Cases: []evals.CaseReport{{Name: "x\x1b[2Jy", Status: evals.StatusFail,
		Trials: []evals.TrialReport{{Trial: 1, Grades: []evals.Grade{{Grader: "judge", Score: evals.Score{Explanation: hostile}}}}}}}}
	var buf bytes.Buffer
	require.NoError(t, r.WriteText(&buf))
	assert.NotContains(t, buf.String(), "\x1b", "an escape reaches the terminal")
	assert.Contains(t, buf.String(), "x[2Jy")
}

func TestTally(t *testing.T) {
	tally := sampleReport().Tally()
	assert.Equal(t, evals.Tally{Cases: 4, Passed: 1, Failed: 1, Flaky: 1, Errors: 1, Trials: 7}, tally)
	assert.Equal(t, "4 cases: 1 passed, 1 failed, 1 flaky, 1 error; 7 trials", tally.String())
}

func TestReportJSON(t *testing.T) {
	var buf bytes.Buffer
	r := sampleReport()
	require.NoError(t, r.WriteJSON(&buf))
	back, err := evals.ReadReport(&buf)
	require.NoError(t, err)
	assert.Equal(t, r, back)

	_, err = evals.ReadReport(bytes.NewReader([]byte(`{"agent":"a","cases":[{"name":"x"}]}`)))
	assert.EqualError(t, err, "read report: case 1 has no name or no status")
	_, err = evals.ReadReport(bytes.NewReader([]byte(`{"agent":`)))
	assert.EqualError(t, err, "read report: unexpected EOF")
}
