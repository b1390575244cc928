package evals

import (
	"encoding/json"
	"time"

	"github.com/cairn-dev/cairn/providers"
)

// Case is one evaluation case: what the agent is given, what it should do,
// and how to tell. A case is plain data that marshals to JSON (and YAML) as
// datasets in files hold it, except Graders, which are Go values.
type Case struct {
	// Name names the case in reports: unique in a dataset.
	Name string `json:"name"`
	// Message is the user's message. For a conversation, give Turns
	// instead: each is a user message, sent once the previous one is
	// answered, in one conversation run.
	Message string   `json:"message,omitempty"`
	Turns   []string `json:"turns,omitempty"`
	// History is a conversation to go on from, before Message.
	History []providers.Message `json:"history,omitempty"`
	// User is the run's user (agent.Input.User).
	User string `json:"user,omitempty"`
	// Expect is what the agent should do; each field set is a grader.
	Expect Expect `json:"expect,omitzero"`
	// Graders are more graders, besides those Expect implies.
	Graders []Grader `json:"-"`
	// Grade names graders of a file dataset (see GraderSpec).
	Grade []GraderSpec `json:"grade,omitempty"`
	// Approvals decide the tool calls the run asks approval for, first
	// match wins; a call no rule matches is rejected, and the case
	// notes it.
	Approvals []Approval `json:"approvals,omitempty"`
	// Answers answer the questions the agent asks a person (ask_human),
	// in order; a question past the last answer is answered "I don't
	// know".
	Answers []string `json:"answers,omitempty"`
	// Fixtures give results for tool calls instead of calling the tool.
	Fixtures []Fixture `json:"fixtures,omitempty"`
	// Tags select cases (Runner.Tags) and group them in reports.
	Tags []string `json:"tags,omitempty"`
	// Trials runs the case that many times (default: the runner's).
	Trials int `json:"trials,omitempty"`
	// Timeout bounds each trial (default: the runner's).
	Timeout Duration `json:"timeout,omitzero"`
	// Crash, if set, runs the case once more for every journal boundary
	// of a clean run, swapping the worker there (see Runner), and checks
	// that the answer is the same and each tool call had its effect
	// once.
	Crash bool `json:"crash,omitempty"`
	// Replay, if set, starts the case from a recorded run (see Replay).
	Replay *Replay `json:"replay,omitempty"`
}

// Expect is what a case expects; each field set is graded.
type Expect struct {
	// Text is the final answer, compared after trimming spaces.
	Text string `json:"text,omitempty"`
	// Contains are texts the final answer contains.
	Contains []string `json:"contains,omitempty"`
	// Regex is a regular expression the final answer matches (RE2).
	Regex string `json:"regex,omitempty"`
	// Output are fields the structured answer has, with these values
	// (JSON equality, field by field; fields not named are not compared).
	Output json.RawMessage `json:"output,omitempty"`
	// Schema is a JSON Schema the structured answer is valid against.
	Schema json.RawMessage `json:"schema,omitempty"`
	// Trajectory is the tool calls the agent should make.
	Trajectory *Trajectory `json:"trajectory,omitempty"`
	// Budget bounds what the run may use.
	Budget *Budget `json:"budget,omitempty"`
}

// TrajectoryMode says how the calls made are matched to those expected.
type TrajectoryMode string

// The trajectory modes.
const (
	// Exact: the same calls, in the same order, and no others.
	TrajectoryExact TrajectoryMode = "exact"
	// InOrder: the calls expected, in that order, others allowed
	// between them.
	TrajectoryInOrder TrajectoryMode = "in_order"
	// AnyOrder: the same calls, in any order, and no others.
	TrajectoryAnyOrder TrajectoryMode = "any_order"
	// Subset: the calls expected, in any order, others allowed.
	TrajectorySubset TrajectoryMode = "subset"
)

// Trajectory is the tool calls a case expects.
type Trajectory struct {
	// Mode defaults to InOrder.
	Mode  TrajectoryMode `json:"mode,omitempty"`
	Calls []ExpectedCall `json:"calls"`
}

// ExpectedCall is a tool call a trajectory expects: the tool, and
// matchers for the arguments that matter. Arguments not named are not
// compared, so volatile ones (ids, times) need not be named; a named one
// is matched by its Matcher.
type ExpectedCall struct {
	Tool string             `json:"tool"`
	Args map[string]Matcher `json:"args,omitempty"`
}

// Matcher matches one argument's JSON value. In JSON it is either a plain
// value (matched by JSON equality), or an object with one key: {"$any":
// true} (present, any value), {"$regex": "..."} (a string matching it),
// {"$absent": true} (not present).
type Matcher struct {
	Equal  json.RawMessage `json:"-"`
	Any    bool            `json:"$any,omitempty"`
	Regex  string          `json:"$regex,omitempty"`
	Absent bool            `json:"$absent,omitempty"`
}

// Budget bounds a run; zero fields are not checked.
type Budget struct {
	// Tokens bounds input and output tokens together.
	Tokens int `json:"tokens,omitempty"`
	// Cost bounds the cost, in the unit of Runner.Prices.
	Cost float64 `json:"cost,omitempty"`
	// Turns bounds the model calls.
	Turns int `json:"turns,omitempty"`
	// Latency bounds the run's time from start to answer.
	Latency Duration `json:"latency,omitzero"`
}

// Approval is a rule that decides a tool call waiting for approval.
type Approval struct {
	// Tool is the tool it applies to; "" matches any.
	Tool string `json:"tool,omitempty"`
	// Args, if set, must match the call's arguments.
	Args     map[string]Matcher `json:"args,omitempty"`
	Approved bool               `json:"approved"`
	By       string             `json:"by,omitempty"`
	Reason   string             `json:"reason,omitempty"`
}

// Fixture is the result of a tool call, used instead of calling the tool.
type Fixture struct {
	Tool string `json:"tool"`
	// Args, if set, must match the call's arguments.
	Args map[string]Matcher `json:"args,omitempty"`
	// Result is what the model reads.
	Result string `json:"result"`
	// IsError tells the model the tool failed.
	IsError bool `json:"is_error,omitempty"`
}

// GraderSpec names a grader in a file dataset: a built-in one by kind,
// or one the program registered (Runner.Graders by name).
type GraderSpec struct {
	// Kind is "judge", or the name of a registered grader.
	Kind string `json:"kind"`
	// Rubric is a judge's rubric.
	Rubric string `json:"rubric,omitempty"`
	// Threshold is the score at or above which the grade passes
	// (default 1, or 0.5 for a judge).
	Threshold float64 `json:"threshold,omitempty"`
	// Params are the grader's own settings.
	Params json.RawMessage `json:"params,omitempty"`
}

// Replay starts a case from a recorded run: the first From steps of its
// history are taken as they were journaled (no model or tool call is made
// again for them), and the run goes on from there with the agent as it is
// now.
type Replay struct {
	// RunID names the recorded run.
	RunID string `json:"run_id"`
	// From is the step from which the agent runs again; 0 replays
	// nothing.
	From int `json:"from,omitempty"`
	// History is the recorded history, as `cairn history export` writes
	// it.
	History json.RawMessage `json:"history,omitempty"`
}

// Duration is a time.Duration that reads and writes JSON as "1.5s".
type Duration time.Duration
