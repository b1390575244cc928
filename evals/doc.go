// Package evals tells whether an agent still behaves: it runs cases (a
// message or the turns of a conversation, and what the agent should do)
// as real durable runs of the agent, grades each trial (the answer, the
// structured output, the tool trajectory, the budget, a judge's rubric,
// graders in Go), and reports pass rates, flaky cases and regressions
// against a baseline.
package evals
