package evals

import (
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Status is a case's verdict over its trials.
type Status string

// The statuses of a case.
const (
	// StatusPass: every trial passed every grader.
	StatusPass Status = "pass"
	// StatusFail: no trial passed.
	StatusFail Status = "fail"
	// StatusFlaky: some trials passed and some did not. A flaky case is
	// reported as such, not as a regression.
	StatusFlaky Status = "flaky"
	// StatusError: the case could not be run or graded (a bad case, a
	// judge that failed).
	StatusError Status = "error"
)

// Report is the result of running a dataset.
type Report struct {
	Agent    string        `json:"agent"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Cases    []CaseReport  `json:"cases"`
}

// CaseReport is the result of one case.
type CaseReport struct {
	Name   string   `json:"name"`
	Tags   []string `json:"tags,omitempty"`
	Status Status   `json:"status"`
	// PassRate is the share of trials that passed.
	PassRate float64       `json:"pass_rate"`
	Trials   []TrialReport `json:"trials"`
	// Error says why the case has StatusError.
	Error string `json:"error,omitempty"`
}

// TrialReport is the result of one trial of a case.
type TrialReport struct {
	Trial   int           `json:"trial"`
	RunID   string        `json:"run_id"`
	Pass    bool          `json:"pass"`
	Grades  []Grade       `json:"grades"`
	Text    string        `json:"text"`
	Calls   []Call        `json:"calls,omitempty"`
	Tokens  int           `json:"tokens"`
	Turns   int           `json:"turns"`
	Latency time.Duration `json:"latency"`
	// Error is why the run failed, if it did.
	Error string `json:"error,omitempty"`
	// Notes are what the runner noticed that graders do not see: a call
	// that waited for approval with no rule to decide it, ...
	Notes []string `json:"notes,omitempty"`
	// Crash, in a crash trial, is the journal commit before which its
	// worker was stopped (1 is the first); 0 in other trials.
	Crash int `json:"crash,omitempty"`
	// ResponseID is the provider's id of the last model response
	// (Outcome.ResponseID): the gen_ai.response.id of the trial's
	// evaluation events.
	ResponseID string `json:"response_id,omitempty"`

	trace backend.Trace // the run's, for evaluation events; not reported
}

// Grade is a grader's score in a trial.
type Grade struct {
	Grader string `json:"grader"`
	Score
}

// runSpans returns the span contexts of the runs of the report's trials,
// by run id, for evaluation events: invalid for a run the report does not
// know.
func (r *Report) runSpans() func(runID string) trace.SpanContext {
	spans := map[string]trace.SpanContext{}
	for _, c := range r.Cases {
		for _, t := range c.Trials {
			if !t.trace.IsZero() {
				spans[t.RunID] = RunSpanContext(t.trace, t.RunID)
			}
		}
	}
	return func(runID string) trace.SpanContext { return spans[runID] }
}
