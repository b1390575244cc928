package evals

import (
	"context"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/providers"
)

// Grader grades what a run did. Grade must be safe for concurrent use; it
// returns an error only when it cannot grade (a judge that failed after
// its retries), not when the run did badly: that is a low score.
type Grader interface {
	// Name names the grader in reports: "contains", "trajectory", ...
	Name() string
	Grade(ctx context.Context, o *Outcome) (Score, error)
}

// Score is a grade: a value in [0,1], whether it passes its threshold, and
// why.
type Score struct {
	Value float64 `json:"value"`
	Pass  bool    `json:"pass"`
	// Label is a word for the score ("pass", "fail", or a judge's).
	Label string `json:"label,omitempty"`
	// Explanation says why: what differed, or a judge's rationale.
	Explanation string `json:"explanation,omitempty"`
}

// Outcome is what one trial of a case did, for graders to read.
type Outcome struct {
	Case *Case
	// RunID names the trial's run; Trial counts from 1.
	RunID string
	Trial int
	// Text and Output are the final answer (of the last turn, in a
	// conversation); Replies, each turn's.
	Text    string
	Output  []byte
	Replies []agent.Reply
	// Err is why the run failed, if it did.
	Err error
	// Calls are the tool calls the agent made, in the order the model
	// asked for them.
	Calls []Call
	// Messages is the conversation; History, the run's history.
	Messages []providers.Message
	History  []backend.Event
	Usage    providers.Usage
	Turns    int
	// Latency is the time from the run's start to its answer.
	Latency time.Duration
	// ResponseID is the provider's id of the last model response.
	ResponseID string
}

// Call is a tool call an agent made, and the result the model read.
type Call struct {
	ID        string `json:"id"`
	Tool      string `json:"tool"`
	Arguments string `json:"arguments"`
	Result    string `json:"result"`
	IsError   bool   `json:"is_error,omitempty"`
}
