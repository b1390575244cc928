package agent

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
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
//     of its own ("sample:<agent>": not a turn of the agent, so neither
//     streamed to the live feed as its text nor read as a turn from
//     history), whose tokens count in the run's usage; a crash after it
//     was journaled does not call the model again;
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
// The calls of a turn that need input are served each on its own (see
// settleTools): two calls' questions wait for people at the same time,
// and a call whose input is in is made again without waiting for the
// others. Within a call, its questions are put one at a time, while its
// samplings run.

// toolInputChange guards serving tools' input (durable.Version): a run
// whose history began before it replays without it (the model reads that
// the tool needed input the run cannot give).
const toolInputChange = "cairn.tool-input"

// maxInputRounds bounds the rounds of input of one call (the go-sdk's
// bound on multi round-trip requests too).
const maxInputRounds = 10

// gathering is the input one call of the turn gathers for its next round.
type gathering struct {
	in    tools.Input // the responses of the rounds before
	need  *inputNeed  // this round's
	round int
	// running: the call is made (tt.tools), not gathering.
	running bool
	// This round's responses; the samplings not yet done; the next
	// request to put to a person; failures, for the model.
	responses []tools.InputResponse
	samples   map[int]durable.Future[providers.Response]
	ask       int
	failed    []string
}

// settleTools waits for the turn's tool calls and serves the input those
// that need it ask for, each on its own: a call's samplings run while
// another call's question waits for a person, and each call is made again
// as soon as its round has its responses. What each call ends with is in
// tt.settled. Without input to serve, it waits for the calls in the
// model's order, as finish did before there was any; a fatal outcome stops
// it.
func (tt *turnTools) settleTools(ctx durable.Context) error {
	order := slices.Sorted(maps.Keys(tt.tools))
	gs := map[int]*gathering{}
	defer durable.SetAwaiting(ctx, nil)
	for {
		var running, busy []int
		for _, i := range order {
			if _, done := tt.settled[i]; done {
				continue
			}
			if g := gs[i]; g == nil || g.running {
				running = append(running, i)
			} else {
				busy = append(busy, i)
			}
		}
		if len(running)+len(busy) == 0 {
			return nil
		}
		if len(busy) == 0 {
			if err := tt.roundDone(ctx, running[0], gs); err != nil {
				return err
			}
			if tt.settled[running[0]].out.Fatal != "" {
				return nil // the run stops there: finish says why
			}
			continue
		}
		if err := durable.SetAwaiting(ctx, tt.open()); err != nil {
			return err
		}
		// What may happen next: a call's round ends, a sampling ends, a
		// person answers. In a fixed order, so replay picks the same.
		type source struct{ call, sample int } // sample -1: the call's round
		var ws []durable.Waitable
		var from []source
		for _, i := range running {
			ws, from = append(ws, tt.tools[i]), append(from, source{i, -1})
		}
		for _, i := range busy {
			for _, j := range slices.Sorted(maps.Keys(gs[i].samples)) {
				ws, from = append(ws, gs[i].samples[j]), append(from, source{i, j})
			}
		}
		if len(tt.elicits) > 0 {
			ws, from = append(ws, answerSignal.Ready(ctx)), append(from, source{-1, -1})
		}
		which, err := durable.Select(ctx, ws...)
		if err != nil {
			return err
		}
		switch s := from[which]; {
		case s.call < 0:
			if err := tt.takeAnswer(ctx); err != nil {
				return err
			}
			for _, i := range slices.Sorted(maps.Keys(tt.replies)) {
				g := gs[i]
				g.responses[g.ask] = tt.replies[i]
				delete(tt.replies, i)
				g.ask++
				if err := tt.advance(ctx, i, g); err != nil {
					return err
				}
			}
		case s.sample < 0:
			if err := tt.roundDone(ctx, s.call, gs); err != nil {
				return err
			}
			if tt.settled[s.call].out.Fatal != "" {
				return nil
			}
		default:
			g := gs[s.call]
			resp, err := g.samples[s.sample].Get(ctx)
			delete(g.samples, s.sample)
			switch {
			case errors.Is(err, durable.ErrCanceled):
				return err
			case err != nil:
				g.failed = append(g.failed, err.Error())
			default:
				tt.st.usage = addUsage(tt.st.usage, resp.Usage)
				g.responses[s.sample] = tools.InputResponse{ID: g.need.Requests[s.sample].ID, Sample: &resp}
			}
			if err := tt.advance(ctx, s.call, g); err != nil {
				return err
			}
		}
	}
}

// settledCall is what a tool call ended with, as its activity's Get says.
type settledCall struct {
	out toolOutcome
	err error
}

// roundDone takes the outcome of call i's round: its result, or what it
// needs for the next round, whose gathering it begins.
func (tt *turnTools) roundDone(ctx durable.Context, i int, gs map[int]*gathering) error {
	out, err := tt.tools[i].Get(ctx)
	if errors.Is(err, durable.ErrCanceled) {
		return err
	}
	if err != nil || out.Needs == nil {
		tt.settled[i] = settledCall{out, err}
		return nil
	}
	c := tt.calls[i]
	g := gs[i]
	if g == nil {
		if durable.Version(ctx, toolInputChange, durable.DefaultVersion, 1) == durable.DefaultVersion {
			tt.settle(i, fmt.Sprintf("the tool %s needs input (a person's answer or a model's completion) that this run cannot give", c.Name))
			return nil
		}
		g = &gathering{}
		gs[i] = g
	}
	switch {
	case len(out.Needs.Requests) == 0:
		tt.settle(i, fmt.Sprintf("the tool %s asked for input without saying what", c.Name))
		return nil
	case g.round >= maxInputRounds:
		tt.settle(i, fmt.Sprintf("the tool %s kept asking for input (%d rounds); the call was given up", c.Name, g.round))
		return nil
	}
	n := len(out.Needs.Requests)
	g.need, g.running, g.ask, g.failed = out.Needs, false, 0, nil
	g.responses, g.samples = make([]tools.InputResponse, n), map[int]durable.Future[providers.Response]{}
	for j, r := range g.need.Requests {
		if r.Kind == tools.InputSampling {
			g.samples[j] = durable.StartActivity(ctx, tt.st.reg.sample, modelCall{Request: *r.Sampling})
		}
	}
	return tt.advance(ctx, i, g)
}

// advance moves call i's gathering on: it puts the next question to a
// person, or, once every response of the round is in, makes the call
// again (or, if a sampling failed, ends it).
func (tt *turnTools) advance(ctx durable.Context, i int, g *gathering) error {
	c := tt.calls[i]
	if _, asking := tt.elicits[i]; asking {
		return nil
	}
	for ; g.ask < len(g.need.Requests); g.ask++ {
		r := g.need.Requests[g.ask]
		if r.Kind != tools.InputElicitation {
			continue
		}
		tt.elicits[i], tt.asking[i] = durable.Now(ctx), r
		return durable.Record(ctx, recQuestionAsked, record{Agent: tt.st.reg.agent.Name, Turn: tt.st.turns, CallID: c.ID,
			Tool: c.Name, Arguments: c.Arguments, Text: r.Message, Input: r.ID, Schema: r.Schema, URL: r.URL})
	}
	if len(g.samples) > 0 {
		return nil
	}
	if len(g.failed) > 0 {
		tt.settle(i, fmt.Sprintf("the tool %s asked for a completion of the model, which failed: %s", c.Name, strings.Join(g.failed, "; ")))
		return nil
	}
	g.in.State = g.need.State
	g.in.Responses = append(g.in.Responses, g.responses...)
	in := g.in // each round's input is its own value
	in.Responses = slices.Clone(g.in.Responses)
	g.round++
	g.running = true
	tt.tools[i] = durable.StartActivity(ctx, tt.activity(c.Name), toolCall{CallID: c.ID, Arguments: c.Arguments,
		Namespace: tt.st.namespace(), Input: &in, Key: g.need.Key})
	return nil
}

// settle ends call i with an error the model reads.
func (tt *turnTools) settle(i int, msg string) {
	tt.settled[i] = settledCall{out: toolOutcome{CallID: tt.calls[i].ID, Result: errorResult(msg)}}
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
