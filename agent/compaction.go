package agent

import (
	"errors"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/providers"
)

// Bounds of the correction of token counts by the provider's: a report
// far outside them is more likely wrong than the tokenizer.
const (
	minScale = 0.25
	maxScale = 4
)

// compact applies the agent's memory policy before a model call: if the
// prompt would pass the policy's budget, the oldest messages of the window
// are folded into the summary, by a summary call that is an activity
// (journaled once, replayed after a crash, never called again), and the
// compaction is recorded. A summary that fails, comes back empty or too
// long is replaced by a fallback, and the run goes on.
func (st *state) compact(ctx durable.Context) error {
	p := st.reg.agent.Memory
	if p == nil {
		return nil
	}
	window := st.messages[st.window:]
	plan := p.Plan(st.request(), st.mem, window)
	if plan.Cut == 0 {
		if plan.Reason != "" {
			durable.Logger(ctx).Warn("prompt past the memory policy's budget", "reason", plan.Reason,
				"tokens", plan.Tokens, "budget", plan.Budget)
		}
		return nil
	}
	evicted := window[:plan.Cut]
	var summary string
	var failed error
	if st.reg.summary != nil {
		resp, err := durable.Execute(ctx, st.reg.summary, modelCall{Request: p.SummaryRequest(st.mem, evicted)})
		if errors.Is(err, durable.ErrCanceled) {
			return err
		}
		st.usage = addUsage(st.usage, resp.Usage)
		summary, failed = resp.Message.Content, err
	}
	next, rec := p.Fold(st.mem, evicted, summary, failed)
	rec.Reason, rec.TokensBefore = plan.Reason, plan.Tokens
	st.mem, st.window = next, st.window+plan.Cut
	return durable.Record(ctx, recCompaction, rec)
}

// calibrate keeps the ratio of the input tokens the provider reported for
// req to the policy's count of it, to correct the next plans.
func (st *state) calibrate(req providers.Request, u providers.Usage) {
	p := st.reg.agent.Memory
	if p == nil || u.InputTokens <= 0 {
		return
	}
	if n := p.Count(req); n > 0 {
		st.mem.Scale = min(max(float64(u.InputTokens)/float64(n), minScale), maxScale)
	}
}
