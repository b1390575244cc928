package durable

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Workflow is a named workflow function. Its code must be deterministic:
// given the same history it must issue the same commands in the same order.
// It may use only the Context and the functions of this package to reach
// the world (Execute, Sleep, Now, Receive, SideEffect, ...), never the
// clock, randomness, goroutines, channels or I/O of its own.
//
// In and Out cross the durable boundary as JSON.
type Workflow[In, Out any] struct {
	name string
	fn   func(Context, In) (Out, error)
}

// NewWorkflow names a workflow function. The name is recorded in each run's
// history; renaming a workflow strands its runs in flight.
func NewWorkflow[In, Out any](name string, fn func(Context, In) (Out, error)) *Workflow[In, Out] {
	if name == "" || fn == nil {
		panic("durable: NewWorkflow needs a name and a function")
	}
	return &Workflow[In, Out]{name: name, fn: fn}
}

// Name returns the workflow's name.
func (w *Workflow[In, Out]) Name() string { return w.name }

func (w *Workflow[In, Out]) workflow() workflowDef {
	return workflowDef{
		name:   w.name,
		inType: reflect.TypeFor[In](),
		run: func(ctx Context, input []byte) ([]byte, error) {
			var in In
			if err := json.Unmarshal(input, &in); err != nil {
				return nil, fmt.Errorf("decode input of workflow %s: %w", w.name, err)
			}
			out, err := w.fn(ctx, in)
			if err != nil {
				return nil, err
			}
			return encodePayload(out)
		},
	}
}

// WorkflowDefinition is a workflow that a worker can run: a *Workflow of any
// type. Register them with Worker.Register.
type WorkflowDefinition interface {
	Name() string
	workflow() workflowDef
}

// workflowDef is a workflow with its types erased to JSON.
type workflowDef struct {
	name   string
	inType reflect.Type
	run    func(ctx Context, input []byte) ([]byte, error)
}

// Activity is a named function that does what workflow code may not: I/O,
// calls to models and tools, anything non-deterministic. Its result is
// journaled; a completed activity is never executed again for the same
// step. An attempt cut off by a crash runs again, with the same
// idempotency key (see ActivityInfo), so activities with side effects
// should be idempotent or pass the key on to the system they call.
//
// In and Out cross the durable boundary as JSON.
type Activity[In, Out any] struct {
	name string
	fn   func(context.Context, In) (Out, error)
	def  activityDef
}

// NewActivity names an activity function with options for every call.
func NewActivity[In, Out any](name string, fn func(context.Context, In) (Out, error), opts ...ActivityOptions) *Activity[In, Out] {
	if name == "" || fn == nil {
		panic("durable: NewActivity needs a name and a function")
	}
	var merged ActivityOptions
	for _, o := range opts {
		merged = merged.merge(o)
	}
	a := &Activity[In, Out]{name: name, fn: fn}
	a.def = a.erase(merged)
	return a
}

// Name returns the activity's name.
func (a *Activity[In, Out]) Name() string { return a.name }

func (a *Activity[In, Out]) activity() activityDef { return a.def }

// ActivityDefinition is an activity that a worker can serve from a task
// queue: an *Activity of any type. Register them with
// Worker.RegisterActivities.
type ActivityDefinition interface {
	Name() string
	activity() activityDef
}

// WithOptions returns a copy of the activity whose options are overridden
// by the non-zero fields of opts.
func (a *Activity[In, Out]) WithOptions(opts ActivityOptions) *Activity[In, Out] {
	c := *a
	c.def = a.erase(a.def.opts.merge(opts))
	return &c
}

// erase gives the activity with its types erased to JSON.
func (a *Activity[In, Out]) erase(opts ActivityOptions) activityDef {
	return activityDef{
		name: a.name,
		opts: opts,
		run: func(ctx context.Context, input []byte) ([]byte, error) {
			var in In
			if err := json.Unmarshal(input, &in); err != nil {
				return nil, NonRetryable(fmt.Errorf("decode input of activity %s: %w", a.name, err))
			}
			out, err := a.fn(ctx, in)
			if err != nil {
				return nil, err
			}
			return encodePayload(out)
		},
	}
}

// activityDef is an activity with its types erased to JSON.
type activityDef struct {
	name string
	opts ActivityOptions
	run  ActivityFunc
}

// ActivityFunc is an activity at the durable boundary: JSON in, JSON out.
// The activity's name, step and attempt are in the context (ActivityInfoFrom).
type ActivityFunc func(ctx context.Context, input []byte) ([]byte, error)

// ActivityMiddleware wraps every activity call a worker makes: for
// logging, tracing, metrics, or replacing activities in tests.
type ActivityMiddleware func(next ActivityFunc) ActivityFunc

// ActivityOptions tune how an activity is run. Zero fields take defaults.
type ActivityOptions struct {
	// TaskQueue, if set, sends the activity's attempts to the named queue,
	// to be run by a worker that serves it (WorkerOptions.TaskQueues), in
	// any process; the store must implement ActivityQueue. By default an
	// activity runs in the worker that owns the run. For queued attempts
	// the start-to-close timeout counts from when the attempt is queued,
	// heartbeats are checked by the serving worker, and cancellation does
	// not reach a running attempt.
	TaskQueue string
	// StartToCloseTimeout bounds one attempt. Default: 10 minutes.
	StartToCloseTimeout time.Duration
	// HeartbeatTimeout, if set, fails an attempt that does not call
	// Heartbeat at least this often.
	HeartbeatTimeout time.Duration
	// RetryPolicy says how failed attempts are retried.
	RetryPolicy RetryPolicy
}

func (o ActivityOptions) merge(n ActivityOptions) ActivityOptions {
	if n.TaskQueue != "" {
		o.TaskQueue = n.TaskQueue
	}
	if n.StartToCloseTimeout != 0 {
		o.StartToCloseTimeout = n.StartToCloseTimeout
	}
	if n.HeartbeatTimeout != 0 {
		o.HeartbeatTimeout = n.HeartbeatTimeout
	}
	o.RetryPolicy = o.RetryPolicy.merge(n.RetryPolicy)
	return o
}

func (o ActivityOptions) startToClose() time.Duration {
	if o.StartToCloseTimeout > 0 {
		return o.StartToCloseTimeout
	}
	return 10 * time.Minute
}

// RetryPolicy says how failed activity attempts are retried: after
// InitialInterval, then each wait BackoffCoefficient times longer, capped at
// MaximumInterval, until MaximumAttempts attempts failed. Zero fields take
// the defaults noted on them.
//
// An attempt lost with its worker (crashed, killed, lease lost: the
// activity's own outcome is unknown, and its effect may have happened) is
// not a failure: it is retried at once with the same idempotency key and
// counts against MaximumLostAttempts only, so a crash is never reported as
// the activity's failure while lost attempts remain. Both counts come from
// the run's history, so every worker and every replay decides alike.
//
// Errors marked with NonRetryable, errors whose Go type name (as printed by
// %T, e.g. "*url.Error") is in NonRetryableErrorTypes, and cancellations
// are never retried.
type RetryPolicy struct {
	// InitialInterval is the wait before the second attempt. Default 1s.
	InitialInterval time.Duration
	// BackoffCoefficient multiplies the wait after each attempt. Default 2.
	BackoffCoefficient float64
	// MaximumInterval caps the wait. Default 100 × InitialInterval.
	MaximumInterval time.Duration
	// MaximumAttempts caps the attempts that failed (returned an error,
	// panicked, timed out), counting the first; attempts lost with their
	// worker do not count. Default 0: unlimited.
	MaximumAttempts int
	// MaximumLostAttempts caps the attempts lost with their worker. The
	// one past it fails the activity with ErrAttemptLost. Default
	// DefaultMaximumLostAttempts; negative: unlimited.
	MaximumLostAttempts int
	// NonRetryableErrorTypes lists Go type names of errors not to retry.
	NonRetryableErrorTypes []string
}

func (p RetryPolicy) merge(n RetryPolicy) RetryPolicy {
	if n.InitialInterval != 0 {
		p.InitialInterval = n.InitialInterval
	}
	if n.BackoffCoefficient != 0 {
		p.BackoffCoefficient = n.BackoffCoefficient
	}
	if n.MaximumInterval != 0 {
		p.MaximumInterval = n.MaximumInterval
	}
	if n.MaximumAttempts != 0 {
		p.MaximumAttempts = n.MaximumAttempts
	}
	if n.MaximumLostAttempts != 0 {
		p.MaximumLostAttempts = n.MaximumLostAttempts
	}
	if n.NonRetryableErrorTypes != nil {
		p.NonRetryableErrorTypes = n.NonRetryableErrorTypes
	}
	return p
}

// Backoff returns the wait after the given failed attempt (1 for the first).
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	initial := p.InitialInterval
	if initial <= 0 {
		initial = time.Second
	}
	coef := p.BackoffCoefficient
	if coef < 1 {
		coef = 2
	}
	maxWait := p.MaximumInterval
	if maxWait <= 0 {
		maxWait = 100 * initial
	}
	d := float64(initial)
	for i := 1; i < attempt && d < float64(maxWait); i++ {
		d *= coef
	}
	return min(time.Duration(d), maxWait)
}

// DefaultMaximumLostAttempts is the number of attempts an activity may
// lose with their workers when its RetryPolicy leaves MaximumLostAttempts
// zero. It bounds a crash loop (an activity that kills its worker every
// time) while letting an activity outlive ordinary restarts and failovers.
const DefaultMaximumLostAttempts = 10

// lostBudget returns the lost attempts allowed, 0 for unlimited.
func (p RetryPolicy) lostBudget() int {
	switch {
	case p.MaximumLostAttempts < 0:
		return 0
	case p.MaximumLostAttempts == 0:
		return DefaultMaximumLostAttempts
	}
	return p.MaximumLostAttempts
}

// retries reports whether a failed or lost attempt should be retried.
// attempt is its number, lost the number of earlier attempts lost with
// their workers, both as the run's history records them.
func (p RetryPolicy) retries(attempt, lost int, f *backend.Failure) bool {
	if f.Kind == backend.KindLost {
		budget := p.lostBudget()
		return budget == 0 || lost+1 < budget
	}
	if f.NonRetryable || f.Kind == backend.KindCanceled || f.Kind == backend.KindNondeterminism {
		return false
	}
	for _, t := range p.NonRetryableErrorTypes {
		if t == f.Type {
			return false
		}
	}
	return p.MaximumAttempts <= 0 || attempt-lost < p.MaximumAttempts
}

// encodePayload encodes a value that crosses the durable boundary.
func encodePayload(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, NonRetryable(fmt.Errorf("encode %T: %w", v, err))
	}
	return data, nil
}

// hashInput is the fingerprint of a run's input that its record keeps,
// against which a second start with the same run id is checked.
func hashInput(input []byte) string {
	sum := sha256.Sum256(input)
	return hex.EncodeToString(sum[:])
}

// hashStepInput is the fingerprint of a step's input that its scheduling
// event journals, for people and tools that compare histories: the first
// 64 bits of its SHA-256, 16 hex digits (the full 64 were a fifth of a
// no-op step's history). Replay does not compare it.
func hashStepInput(input []byte) string {
	sum := sha256.Sum256(input)
	return hex.EncodeToString(sum[:8])
}
