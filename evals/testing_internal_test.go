package evals

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDescribeCase(t *testing.T) {
	msg := describeCase(CaseReport{Name: "c", Status: StatusFlaky, Trials: []TrialReport{
		{Trial: 1, Pass: true},
		{Trial: 2, RunID: "eval-c-2", Grades: []Grade{{Grader: "equals", Score: Score{Explanation: `answer "Lyon", want "Paris"`}}},
			Notes: []string{"no rule decided it"}},
		{Trial: 3, Pass: true},
	}})
	assert.Contains(t, msg, "flaky: 2/3 trials passed")
	assert.Contains(t, msg, `trial 2 (run eval-c-2):`)
	assert.Contains(t, msg, `equals 0.00: answer "Lyon", want "Paris"`)
	assert.Contains(t, msg, "note: no rule decided it")
	assert.Contains(t, describeCase(CaseReport{Status: StatusError, Error: "judge failed"}), "error: judge failed")
}

func TestCrashPoints(t *testing.T) {
	assert.Equal(t, []int{1, 2, 3}, crashPoints(3, 50))
	pts := crashPoints(200, 5)
	assert.Equal(t, []int{1, 50, 100, 150, 200}, pts)
}
