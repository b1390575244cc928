package agent

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// A tool call that needs input (the tool returned tools.NeedInput: an MCP
// server asked, while it served the call, for a person's answer or for a
// completion of the client's model) ends its activity with what it needs,
// journaled as the activity's result (toolOutcome.Needs), not as a
// failure. The loop then gets the input, durably:
//
//   - a sampling request is a model call of the agent's model, an activity
//     of its own ("model:<agent>", not streamed to the live feed as the
//     agent's text), whose tokens count in the run's usage; a crash after
//     it was journaled does not call the model again;
//   - a person's question (elicitation) is a pending question like
//     ask_human's (question_asked, with the requested JSON Schema or URL):
//     the run waits, holding no worker, until someone answers with
//     Runtime.Answer or `cairn answer`; the answer is checked against the
//     schema (a bad one is refused, recorded, and the question waits on),
//     and the answerer is authorised and recorded like any other;
//
// then calls the tool again, a new activity with the same call id and the
// idempotency key of the first, with every response so far in its context
// (tools.WithInput), for as many rounds as the tool needs, up to
// maxInputRounds. The model reads the tool's final result only.
//
// A turn's calls are served in the model's order: a call's questions are
// put to a person once the calls before it in the turn have their
// results, and one at a time within a call.

// toolInputChange guards serving tools' input (durable.Version): a run
// whose history began before it replays without it (the model reads that
// the tool needed input the run cannot give).
const toolInputChange = "cairn.tool-input"

// maxInputRounds bounds the rounds of input of one call (the go-sdk's
// bound on multi round-trip requests too).
const maxInputRounds = 10

// serveInput gets the input call i needs (out.Needs) and calls the tool
// again, until it has a result, which it returns. A tool call that fails
// is the model's to read, as any; an error is the run's (canceled, a
// history that cannot be written).
func (tt *turnTools) serveInput(ctx durable.Context, i int, out toolOutcome) (toolOutcome, error) {
	c := tt.calls[i]
	if durable.Version(ctx, toolInputChange, durable.DefaultVersion, 1) == durable.DefaultVersion {
		return toolOutcome{CallID: c.ID, Result: errorResult(fmt.Sprintf(
			"the tool %s needs input (a person's answer or a model's completion) that this run cannot give", c.Name))}, nil
	}
	act := tt.activity(c.Name)
	var in tools.Input
	for round := 0; out.Needs != nil; round++ {
		need := out.Needs
		if len(need.Requests) == 0 {
			return toolOutcome{CallID: c.ID, Result: errorResult(fmt.Sprintf(
				"the tool %s asked for input without saying what", c.Name))}, nil
		}
		if round >= maxInputRounds {
			return toolOutcome{CallID: c.ID, Result: errorResult(fmt.Sprintf(
				"the tool %s kept asking for input (%d rounds); the call was given up", c.Name, round))}, nil
		}
		responses, failed, err := tt.gather(ctx, i, need.Requests)
		if err != nil {
			return toolOutcome{}, err
		}
		if failed != "" {
			return toolOutcome{CallID: c.ID, Result: errorResult(failed)}, nil
		}
		in.State = need.State
		in.Responses = append(in.Responses, responses...)
		next := in // each round's input is its own value
		next.Responses = append([]tools.InputResponse(nil), in.Responses...)
		out, err = durable.StartActivity(ctx, act, toolCall{CallID: c.ID, Arguments: c.Arguments,
			Namespace: tt.st.namespace(), Input: &next, Key: need.Key}).Get(ctx)
		switch {
		case errors.Is(err, durable.ErrCanceled):
			return toolOutcome{}, err
		case err != nil:
			return toolOutcome{CallID: c.ID, Result: errorResult(fmt.Sprintf("the tool %s failed: %v", c.Name, err))}, nil
		}
	}
	return out, nil
}

// gather gets the responses to one round's requests of call i (checked
// by the activity that returned them): the samplings, in parallel, while
// the questions are put to a person one after the other. failed, if not
// empty, is why the call cannot go on, for the model.
func (tt *turnTools) gather(ctx durable.Context, i int, reqs []tools.InputRequest) (_ []tools.InputResponse, failed string, _ error) {
	c := tt.calls[i]
	out := make([]tools.InputResponse, len(reqs))
	samples := map[int]durable.Future[providers.Response]{}
	for j, r := range reqs {
		if r.Kind == tools.InputSampling {
			samples[j] = durable.StartActivity(ctx, tt.st.reg.model, modelCall{Request: *r.Sampling, Sampling: true})
		}
	}
	for j, r := range reqs {
		if r.Kind != tools.InputElicitation {
			continue
		}
		tt.elicits[i], tt.asking[i] = durable.Now(ctx), r
		rec := record{Agent: tt.st.reg.agent.Name, Turn: tt.st.turns, CallID: c.ID, Tool: c.Name, Arguments: c.Arguments,
			Text: r.Message, Input: r.ID, Schema: r.Schema, URL: r.URL}
		if err := durable.Record(ctx, recQuestionAsked, rec); err != nil {
			return nil, "", err
		}
		if err := tt.awaitPeople(ctx); err != nil {
			return nil, "", err
		}
		out[j] = tt.replies[i]
		delete(tt.replies, i)
	}
	var errs []string
	for j := range reqs {
		f, ok := samples[j]
		if !ok {
			continue
		}
		resp, err := f.Get(ctx)
		if errors.Is(err, durable.ErrCanceled) {
			return nil, "", err
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		tt.st.usage = addUsage(tt.st.usage, resp.Usage)
		out[j] = tools.InputResponse{ID: reqs[j].ID, Sample: &resp}
	}
	if len(errs) > 0 {
		return nil, fmt.Sprintf("the tool %s asked for a completion of the model, which failed: %s", c.Name, strings.Join(errs, "; ")), nil
	}
	return out, "", nil
}

// answerInput takes a person's answer to the question call i's tool asked,
// if it fits the question; one that does not is refused (recorded as
// decision_refused, with why) and the question waits on.
func (tt *turnTools) answerInput(ctx durable.Context, i int, a answerMsg) error {
	r, c := tt.asking[i], tt.calls[i]
	asked := tt.elicits[i]
	// The verdict is journaled: a validator changed by a deploy does not
	// change what a replay does.
	problem, err := durable.SideEffect(ctx, func() string {
		if err := r.CheckAnswer(a.Action, json.RawMessage(a.Text)); err != nil {
			return err.Error()
		}
		return ""
	})
	if err != nil {
		return err
	}
	if problem != "" {
		return durable.Record(ctx, recDecisionRefused, record{Agent: tt.st.reg.agent.Name, Turn: tt.st.turns,
			CallID: c.ID, Tool: c.Name, By: a.By, Reason: problem, Since: asked})
	}
	delete(tt.elicits, i)
	delete(tt.asking, i)
	resp := tools.InputResponse{ID: r.ID, Action: cmp.Or(a.Action, tools.ActionAccept), By: a.By}
	if resp.Action == tools.ActionAccept && len(r.Schema) > 0 {
		resp.Content = json.RawMessage(a.Text)
	}
	tt.replies[i] = resp
	return durable.Record(ctx, recQuestionAnswered, record{Agent: tt.st.reg.agent.Name, Turn: a.Turn,
		CallID: c.ID, By: a.By, Text: string(resp.Content), Input: r.ID, Action: resp.Action, Since: asked})
}

// checkAnswer checks an answer against the question it answers, before it
// is sent.
func checkAnswer(q PendingCall, a Answer) error {
	if len(q.Schema) == 0 && q.URL == "" {
		if a.Action != "" && a.Action != tools.ActionAccept {
			return fmt.Errorf("the model's question takes an answer, not the action %q", a.Action)
		}
		return nil
	}
	return tools.InputRequest{Kind: tools.InputElicitation, Schema: q.Schema, URL: q.URL}.CheckAnswer(a.Action, json.RawMessage(a.Text))
}

// activity returns the activity that calls the tool name.
func (tt *turnTools) activity(name string) *durable.Activity[toolCall, toolOutcome] {
	if act := tt.st.reg.tools[name]; act != nil {
		return act
	}
	return tt.st.lists[tt.st.reg.agent.Name].activities[name] // lookup found it there
}
