package evals

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable/backend"
)

// EvaluationEvent is the name of the event EmitEvents emits, as the
// OpenTelemetry semantic conventions for generative AI name it.
const EvaluationEvent = "gen_ai.evaluation.result"

// The attributes of an evaluation event: the semantic conventions' own,
// then cairn's, which name the case, trial and run.
const (
	AttrEvaluationName        = "gen_ai.evaluation.name"
	AttrEvaluationScoreValue  = "gen_ai.evaluation.score.value"
	AttrEvaluationScoreLabel  = "gen_ai.evaluation.score.label"
	AttrEvaluationExplanation = "gen_ai.evaluation.explanation"
	AttrResponseID            = "gen_ai.response.id"
	AttrEvalCase              = "cairn.eval.case"
	AttrEvalTrial             = "cairn.eval.trial"
	AttrRunID                 = "cairn.run.id"
)

// RunSpanContext is the span context of the span of run runID in trace t
// (the run's record's Trace): the span its evaluation events hang under.
func RunSpanContext(t backend.Trace, runID string) trace.SpanContext {
	if t.IsZero() {
		return trace.SpanContext{}
	}
	return t.SpanContext(t.RunSpanID(runID))
}

// EmitEvents emits a gen_ai.evaluation.result event through logger (the
// OpenTelemetry Logs API) for each grade of each trial of r, as the
// semantic conventions say: the grader's name as gen_ai.evaluation.name,
// the score's value and label (its Label, or "pass" or "fail"), its
// explanation (a judge's rationale) when it has one, and the trial's
// gen_ai.response.id when known; and cairn.eval.case, cairn.eval.trial
// and cairn.run.id.
//
// Each event is parented to the evaluated run's span: span gives the
// span context of a run by its id (for a run in a store, RunSpanContext
// of its record's Trace). When span is nil, or gives an invalid span
// context, the event takes the span in ctx, if any, and
// gen_ai.response.id is what ties it to the evaluated response.
//
// Trials with no grades (a run that failed before it could be graded)
// and cases that could not run emit nothing: their errors are in the
// report. EmitEvents is safe for concurrent use if logger is.
func EmitEvents(ctx context.Context, logger log.Logger, r *Report, span func(runID string) trace.SpanContext) {
	if !logger.Enabled(ctx, log.EnabledParameters{Severity: log.SeverityInfo, EventName: EvaluationEvent}) {
		return
	}
	for _, c := range r.Cases {
		for _, t := range c.Trials {
			if len(t.Grades) == 0 {
				continue
			}
			runCtx := ctx
			if span != nil {
				if sc := span(t.RunID); sc.IsValid() {
					runCtx = trace.ContextWithSpanContext(ctx, sc)
				}
			}
			for _, g := range t.Grades {
				logger.Emit(runCtx, evaluationRecord(&c, &t, g))
			}
		}
	}
}

// evaluationRecord is the event of one grade.
func evaluationRecord(c *CaseReport, t *TrialReport, g Grade) log.Record {
	var rec log.Record
	rec.SetEventName(EvaluationEvent)
	rec.SetSeverity(log.SeverityInfo)
	rec.SetSeverityText("INFO")
	label := g.Label
	if label == "" {
		label = "fail"
		if g.Pass {
			label = "pass"
		}
	}
	rec.AddAttributes(
		attribute.String(AttrEvaluationName, g.Grader),
		attribute.Float64(AttrEvaluationScoreValue, g.Value),
		attribute.String(AttrEvaluationScoreLabel, label),
	)
	if g.Explanation != "" {
		rec.AddAttributes(attribute.String(AttrEvaluationExplanation, g.Explanation))
	}
	if t.ResponseID != "" {
		rec.AddAttributes(attribute.String(AttrResponseID, t.ResponseID))
	}
	rec.AddAttributes(
		attribute.String(AttrEvalCase, c.Name),
		attribute.Int(AttrEvalTrial, t.Trial),
		attribute.String(AttrRunID, t.RunID),
	)
	return rec
}
