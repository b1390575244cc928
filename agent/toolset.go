package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/tools"
)

// Toolset is a list of tools an agent learns when a run starts, not when
// the agent is defined: the tools of an MCP server (package tools/mcp), or
// any list that changes while the program runs. It is the one way such
// tools reach the loop.
//
// The contract:
//
//   - Name names the toolset in its agent. It is constant, and unique
//     among the agent's toolsets.
//   - Tools returns the tools offered now. It is called from activities,
//     never from workflow code, so it may do I/O; it must be safe for
//     concurrent use, and should answer from a cache while nothing
//     changed, since every call of one of its tools calls it too.
//   - A run calls Tools once, when it starts (and when a conversation
//     starts a new generation, and when the conversation is handed to an
//     agent with toolsets), in the activity "toolset:<agent>". What it
//     returns (each tool's definition, whether it needs approval, its
//     timeout, retry policy and idempotency, and a hash of all that) is
//     journaled in the run's history: the model is shown that list for the
//     rest of the run or generation, replay reads it from history and does
//     not call Tools again, and the model's arguments are checked against
//     the recorded schemas, in the loop, before any activity. A toolset whose tools changed is picked up at the next run
//     or generation, never in the middle of one.
//   - A call of a listed tool is an activity like any tool call
//     ("tool:<agent>/<tool>"): it calls Tools, looks the tool up by name,
//     and calls it. A tool that has gone since the list was recorded is
//     not an error of the run: the model reads that it is no longer
//     offered. An error from Tools is a failed attempt, retried per the
//     recorded policy.
//   - A listed tool whose name is taken (by the agent's own tools, its
//     workflow, memory and built-in tools, handoffs, helpers, or an
//     earlier toolset) is left out, and the recorded list says why.
//   - A call may end needing input (tools.NeedInput: an MCP server's
//     elicitation or sampling): the run asks a person, or its model, and
//     calls the tool again with the responses (see Runtime.Answer).
//   - Approval: a listed tool given tools.RequireApproval or
//     tools.RequireApprovalIf waits for approval on every call (a
//     per-call policy cannot be evaluated against the recorded list).
//   - If Tools fails, the listing activity is retried (up to
//     DefaultToolsetAttempts failed attempts), then the run fails.
//   - Toolsets may be given to an agent whose runs are in flight: the
//     listing is guarded by durable.Version (change "toolsets:<agent>"),
//     so a run (or generation) that began without them goes on without
//     them, and the next one lists them.
type Toolset interface {
	Name() string
	Tools(ctx context.Context) (*tools.Set, error)
}

// DefaultToolsetAttempts is the attempts of listing an agent's toolsets
// that may fail before the run fails.
const DefaultToolsetAttempts = 5

// toolList is the journaled result of listing an agent's toolsets.
type toolList struct {
	Tools []listedTool `json:"tools"`
	// Hash is the SHA-256 of Tools' JSON: two runs with the same hash
	// were shown the same tools.
	Hash string `json:"hash"`
	// Dropped says which tools were left out, and why.
	Dropped []string `json:"dropped,omitempty"`
}

// listedTool is a tool of a toolset as recorded.
type listedTool struct {
	Toolset     string              `json:"toolset"`
	Name        string              `json:"name"`
	Description string              `json:"description,omitempty"`
	Parameters  json.RawMessage     `json:"parameters"`
	Approval    bool                `json:"approval,omitempty"`
	Timeout     time.Duration       `json:"timeout,omitempty"`
	Retry       durable.RetryPolicy `json:"retry,omitzero"`
	Idempotent  bool                `json:"idempotent,omitempty"`
}

// listing is an agent's toolsets as a run knows them: the recorded list,
// the tools made of it (whose schemas check arguments in workflow code;
// they are never called) and the activities that call the live tools.
type listing struct {
	list       toolList
	set        *tools.Set
	activities map[string]*durable.Activity[toolCall, toolOutcome]
}

// listToolsets is the activity that lists agent a's toolsets.
func (rt *Runtime) listToolsets(a *Agent) func(context.Context, struct{}) (toolList, error) {
	return func(ctx context.Context, _ struct{}) (toolList, error) {
		taken := map[string]bool{}
		for _, n := range a.toolNames() {
			taken[n] = true
		}
		var list toolList
		var errs []error
		for _, ts := range a.Toolsets {
			set, err := ts.Tools(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("toolset %s: %w", ts.Name(), err))
				continue
			}
			if set == nil {
				continue
			}
			for _, t := range set.List() {
				if taken[t.Name()] {
					list.Dropped = append(list.Dropped, fmt.Sprintf("toolset %s: tool %s: the name is taken", ts.Name(), t.Name()))
					continue
				}
				taken[t.Name()] = true
				list.Tools = append(list.Tools, listedTool{Toolset: ts.Name(), Name: t.Name(), Description: t.Description(),
					Parameters: t.Schema(), Approval: t.RequiresApproval(), Timeout: t.Timeout(), Retry: t.RetryPolicy(),
					Idempotent: t.HonorsIdempotencyKey()})
			}
		}
		if len(errs) > 0 {
			return toolList{}, errors.Join(errs...)
		}
		b, err := json.Marshal(list.Tools)
		if err != nil {
			return toolList{}, durable.NonRetryable(fmt.Errorf("encode tool list: %w", err))
		}
		sum := sha256.Sum256(b)
		list.Hash = hex.EncodeToString(sum[:])
		return list, nil
	}
}

// toolNames are the names of the tools an agent offers apart from its
// toolsets' (memory tools included, whether or not a run has a user).
func (a *Agent) toolNames() []string {
	var names []string
	if a.Tools != nil {
		names = append(names, a.Tools.Names()...)
	}
	for _, t := range a.WorkflowTools {
		names = append(names, t.Name())
	}
	if a.AskHuman {
		names = append(names, AskHumanTool)
	}
	if lt := a.LongTerm; lt != nil && lt.Tools {
		names = append(names, RememberTool, RecallTool, ForgetTool)
	}
	for _, h := range a.Handoffs {
		names = append(names, handoffPrefix+h.Name)
	}
	for _, h := range a.Helpers {
		names = append(names, h.Name)
	}
	return names
}

// listed returns the listing of the run's current agent's toolsets, nil
// if it has none, listing them (an activity) the first time.
func (st *state) listed(ctx durable.Context, rt *Runtime) (*listing, error) {
	reg := st.reg
	if reg.toolsets == nil {
		return nil, nil
	}
	if l, ok := st.lists[reg.agent.Name]; ok {
		return l, nil
	}
	if st.lists == nil {
		st.lists = map[string]*listing{}
	}
	// Toolsets given to an agent whose runs are in flight: a run that
	// began without them goes on without them, rather than diverge
	// from its history.
	if durable.Version(ctx, "toolsets:"+reg.agent.Name, durable.DefaultVersion, 1) == durable.DefaultVersion {
		st.lists[reg.agent.Name] = nil
		return nil, nil
	}
	list, err := durable.Execute(ctx, reg.toolsets, struct{}{})
	if err != nil {
		return nil, fmt.Errorf("agent %s: list toolsets: %w", reg.agent.Name, err)
	}
	l := &listing{list: list, activities: map[string]*durable.Activity[toolCall, toolOutcome]{}}
	sets := map[string]Toolset{}
	for _, ts := range reg.agent.Toolsets {
		sets[ts.Name()] = ts
	}
	var shadows []*tools.Tool
	for _, lt := range list.Tools {
		ts, ok := sets[lt.Toolset]
		if !ok {
			continue // a toolset of an older deploy
		}
		var opts []tools.Option
		if lt.Approval {
			opts = append(opts, tools.RequireApproval())
		}
		shadow, err := tools.NewRaw(lt.Name, lt.Description, lt.Parameters, notInWorkflow, opts...)
		if err != nil {
			durable.Logger(ctx).Warn("listed tool left out", "toolset", lt.Toolset, "tool", lt.Name, "err", err)
			continue
		}
		shadows = append(shadows, shadow)
		l.activities[lt.Name] = durable.NewActivity("tool:"+reg.agent.Name+"/"+lt.Name,
			rt.callListed(reg.agent, ts, lt.Name), toolOptions(lt.Retry, lt.Timeout))
	}
	if l.set, err = tools.NewSet(shadows...); err != nil {
		return nil, durable.NonRetryable(fmt.Errorf("agent %s: toolsets: %w", reg.agent.Name, err))
	}
	st.lists[reg.agent.Name] = l
	return l, nil
}

// notInWorkflow is the function of the tools the loop makes of a recorded
// list: they check arguments; the live tools run the calls.
func notInWorkflow(context.Context, json.RawMessage) (tools.Result, error) {
	return tools.Result{}, tools.Fatal(errors.New("a listed tool was called in workflow code"))
}

// callListed is the activity that calls the listed tool name of toolset
// ts, as the toolset offers it now.
func (rt *Runtime) callListed(a *Agent, ts Toolset, name string) func(context.Context, toolCall) (toolOutcome, error) {
	return func(ctx context.Context, c toolCall) (toolOutcome, error) {
		set, err := ts.Tools(ctx)
		if err != nil {
			return toolOutcome{}, fmt.Errorf("toolset %s: %w", ts.Name(), err)
		}
		var t *tools.Tool
		if set != nil {
			t, _ = set.Lookup(name)
		}
		if t == nil {
			return toolOutcome{CallID: c.CallID, Result: errorResult(fmt.Sprintf(
				"the tool %s is no longer offered by %s (it was when this run began); do not call it again", name, ts.Name()))}, nil
		}
		return rt.runTool(ctx, a, t, c)
	}
}

// toolOptions are the activity options of a tool call.
func toolOptions(retry durable.RetryPolicy, timeout time.Duration) durable.ActivityOptions {
	opts := durable.ActivityOptions{RetryPolicy: retry}
	if opts.RetryPolicy.MaximumAttempts == 0 {
		opts.RetryPolicy.MaximumAttempts = DefaultToolAttempts
	}
	if timeout > 0 {
		// The tool enforces its own timeout; the activity's bound is a
		// backstop for a stuck attempt.
		opts.StartToCloseTimeout = 2*timeout + 10*time.Second
	}
	return opts
}

// validToolsets checks an agent's toolsets.
func (a *Agent) validToolsets() error {
	seen := map[string]bool{}
	for i, ts := range a.Toolsets {
		if ts == nil {
			return fmt.Errorf("agent %s: toolset %d is nil", a.Name, i)
		}
		n := ts.Name()
		if strings.TrimSpace(n) == "" {
			return fmt.Errorf("agent %s: toolset %d has no name", a.Name, i)
		}
		if seen[n] {
			return fmt.Errorf("agent %s: two toolsets are named %q", a.Name, n)
		}
		seen[n] = true
	}
	return nil
}
