package durable

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// ErrRunEnded means a message was sent to a run that has ended.
var ErrRunEnded = errors.New("run has ended")

// ClientOptions configure a Client.
type ClientOptions struct {
	// Codec transforms payloads at rest; it must be the workers' codec.
	Codec backend.Codec
	// Clock tells time. Default: backend.SystemClock.
	Clock backend.Clock
}

// Client starts runs and talks to them: signal, cancel, describe, read
// history, wait for results. It is safe for concurrent use.
type Client struct {
	store backend.Store
	codec backend.Codec
	clock backend.Clock
}

// NewClient returns a client of store.
func NewClient(s backend.Store, opts ClientOptions) *Client {
	c := &Client{store: s, codec: opts.Codec, clock: opts.Clock}
	if c.clock == nil {
		c.clock = backend.SystemClock()
	}
	return c
}

// Run is a handle on a run whose workflow returns Out.
type Run[Out any] struct {
	ID     string
	client *Client
}

// Start starts a run of the workflow with the caller's run id. Starting an
// id that exists with the same workflow and input returns the existing run
// (so a retried start is harmless); with another workflow or input it is an
// error wrapping ErrRunExists. Any other error means the run may or may
// not have been created (Redis was unreachable, or a reply was lost):
// calling Start again with the same id and input is safe, and finishes
// what the first call began.
func (w *Workflow[In, Out]) Start(ctx context.Context, c *Client, runID string, in In) (*Run[Out], error) {
	input, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("start %s: encode input: %w", w.name, err)
	}
	info := backend.RunInfo{ID: runID, Workflow: w.name, InputHash: hashInput(input), Trace: backend.TraceFrom(ctx)}
	start := backend.Event{Type: backend.EventRunStarted, Name: w.name, Payload: input, Sender: SenderFrom(ctx), Trace: info.Trace}
	if _, err := c.create(ctx, info, start); err != nil {
		return nil, fmt.Errorf("start %s: %w", w.name, err)
	}
	return &Run[Out]{ID: runID, client: c}, nil
}

// Get returns a handle on an existing run of the workflow.
func (w *Workflow[In, Out]) Get(c *Client, runID string) *Run[Out] {
	return &Run[Out]{ID: runID, client: c}
}

// Result waits until the run has ended and returns its result. A run that
// failed or was canceled gives a *RunError (errors.Is(err, ErrCanceled)
// tells a cancellation). A parked run is waited for, as it resumes once
// fixed code is deployed; bound the wait with ctx.
func (r *Run[Out]) Result(ctx context.Context) (Out, error) {
	var out Out
	info, err := r.client.Wait(ctx, r.ID)
	if err != nil {
		return out, err
	}
	if info.Status != backend.StatusCompleted {
		return out, &RunError{RunID: r.ID, Status: info.Status, Failure: info.Failure}
	}
	end, err := r.client.lastEvent(ctx, info)
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(end.Payload, &out); err != nil {
		return out, fmt.Errorf("run %s: decode result: %w", r.ID, err)
	}
	return out, nil
}

// Describe returns the run's record (see Client.Describe).
func (r *Run[Out]) Describe(ctx context.Context) (backend.RunInfo, error) {
	return r.client.Describe(ctx, r.ID)
}

// Cancel asks the run to stop (see Client.Cancel).
func (r *Run[Out]) Cancel(ctx context.Context) error { return r.client.Cancel(ctx, r.ID) }

// History returns the run's current history (see Client.History).
func (r *Run[Out]) History(ctx context.Context) ([]backend.Event, error) {
	return r.client.History(ctx, r.ID)
}

// RunError is the error of a run that failed or was canceled.
type RunError struct {
	RunID   string
	Status  backend.Status
	Failure *backend.Failure
}

func (e *RunError) Error() string {
	return fmt.Sprintf("run %s %s: %s", e.RunID, e.Status, e.failure().Message)
}

// Unwrap gives the failure and the sentinel error of its kind.
func (e *RunError) Unwrap() []error { return unwrapFailure(e.failure()) }

func (e *RunError) failure() *backend.Failure {
	if e.Failure == nil {
		return &backend.Failure{Message: string(e.Status)}
	}
	return e.Failure
}

// create creates a run, or checks that the existing one is the same.
func (c *Client) create(ctx context.Context, info backend.RunInfo, start backend.Event) (backend.RunInfo, error) {
	now := c.clock.Now()
	info.Status, info.CreatedAt, info.UpdatedAt = backend.StatusPending, now, now
	start.Seq, start.Time, start.Seed = 1, now, randomSeed()
	data, err := backend.EncodeEvent(start, c.codec)
	if err != nil {
		return backend.RunInfo{}, err
	}
	existing, created, err := c.store.CreateRun(ctx, info, data)
	if err != nil {
		return backend.RunInfo{}, fmt.Errorf("create run %s: %w", info.ID, err)
	}
	if !created && (existing.Workflow != info.Workflow || existing.InputHash != info.InputHash) {
		return existing, fmt.Errorf("run %s: %w (it runs %s)", info.ID, ErrRunExists, existing.Workflow)
	}
	return existing, nil
}

// startChild creates the child run of a parent's step, or finds it. If the
// child has ended (or cannot be created), it returns the event that
// delivers the outcome to the parent.
func (c *Client) startChild(ctx context.Context, parent backend.RunInfo, cmd *command) (*backend.Event, error) {
	info := backend.RunInfo{ID: cmd.childID, Workflow: cmd.name, InputHash: hashInput(cmd.input),
		ParentID: parent.ID, ParentStep: cmd.step, Trace: childTrace(parent, cmd.step)}
	start := backend.Event{Type: backend.EventRunStarted, Name: cmd.name, Payload: cmd.input, RunID: parent.ID, Trace: info.Trace}
	existing, err := c.create(ctx, info, start)
	end := &backend.Event{Type: backend.EventChildCompleted, Step: cmd.step, RunID: cmd.childID}
	switch {
	case errors.Is(err, ErrRunExists):
		end.Failure = &backend.Failure{Message: err.Error(), NonRetryable: true}
		return end, nil
	case err != nil:
		return nil, err
	case !existing.Status.Terminal():
		return nil, nil
	}
	last, err := c.lastEvent(ctx, existing)
	if err != nil {
		return nil, err
	}
	end.Payload, end.Failure = last.Payload, last.Failure
	return end, nil
}

// lastEvent reads the last event of a run's history.
func (c *Client) lastEvent(ctx context.Context, info backend.RunInfo) (backend.Event, error) {
	entries, err := c.store.ReadHistory(ctx, info.ID, info.HistoryLen)
	if err != nil {
		return backend.Event{}, fmt.Errorf("run %s: read history: %w", info.ID, err)
	}
	events, err := backend.DecodeHistory(entries, info.HistoryLen, c.codec)
	if err != nil {
		return backend.Event{}, fmt.Errorf("run %s: %w", info.ID, err)
	}
	if len(events) == 0 {
		return backend.Event{}, fmt.Errorf("run %s: %w: history is shorter than its record says", info.ID, backend.ErrCorruptHistory)
	}
	return events[len(events)-1], nil
}

// Signal sends a signal with a JSON-encodable payload to a run. Prefer the
// typed Signal.Send.
func (c *Client) Signal(ctx context.Context, runID, name string, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("signal %s: encode payload: %w", name, err)
	}
	return c.send(ctx, runID, backend.Event{Type: backend.EventSignalReceived, Name: name, Payload: data, Sender: SenderFrom(ctx)})
}

// Cancel asks a run to cancel. The workflow sees ErrCanceled from its
// cancelable calls, running activities see their context canceled, and the
// workflow may clean up (see WithoutCancel and Saga) before it returns.
func (c *Client) Cancel(ctx context.Context, runID string) error {
	return c.send(ctx, runID, backend.Event{Type: backend.EventCancelRequested, Sender: SenderFrom(ctx)})
}

// ErrNotParked means Resume was asked for a run that is not parked.
var ErrNotParked = errors.New("run is not parked")

// Resume asks a parked run to be tried again by a worker that has its
// workflow: typically after code that replays its history was deployed.
// Workers also try parked runs again when they start. If the code still
// cannot go on, the run parks again, saying why. Resuming a run that is
// not parked is an error wrapping ErrNotParked, also when it ends while
// Resume asks (a worker that started meanwhile took it up and finished it).
func (c *Client) Resume(ctx context.Context, runID string) error {
	info, err := c.store.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("resume run %s: %w", runID, err)
	}
	if info.Status != backend.StatusParked {
		return fmt.Errorf("resume run %s: %w (it is %s)", runID, ErrNotParked, info.Status)
	}
	err = c.send(ctx, runID, backend.Event{Type: backend.EventResumeRequested, Sender: SenderFrom(ctx)})
	if errors.Is(err, ErrRunEnded) {
		return fmt.Errorf("resume run %s: %w: %w", runID, ErrNotParked, err)
	}
	return err
}

// send puts an event in a run's inbox.
func (c *Client) send(ctx context.Context, runID string, e backend.Event) error {
	info, err := c.store.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("send %s to run %s: %w", e.Type, runID, err)
	}
	if info.Status.Terminal() {
		return fmt.Errorf("send %s to run %s: %w (%s)", e.Type, runID, ErrRunEnded, info.Status)
	}
	e.Time = c.clock.Now()
	data, err := backend.EncodeEvent(e, c.codec)
	if err != nil {
		return err
	}
	if err := c.store.Send(ctx, runID, data); err != nil {
		return fmt.Errorf("send %s to run %s: %w", e.Type, runID, err)
	}
	return nil
}

// Describe returns a run's record: status, current step, what it waits for.
func (c *Client) Describe(ctx context.Context, runID string) (backend.RunInfo, error) {
	return c.store.GetRun(ctx, runID)
}

// ListRuns returns the runs that match filter, newest first.
func (c *Client) ListRuns(ctx context.Context, filter backend.RunFilter) ([]backend.RunInfo, error) {
	return c.store.ListRuns(ctx, filter)
}

// History returns the events of a run's current history.
func (c *Client) History(ctx context.Context, runID string) ([]backend.Event, error) {
	entries, err := c.store.ReadHistory(ctx, runID, 1)
	if err != nil {
		return nil, fmt.Errorf("run %s: read history: %w", runID, err)
	}
	events, err := backend.DecodeHistory(entries, 1, c.codec)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	return events, nil
}

// Wait waits until a run has ended and returns its record.
func (c *Client) Wait(ctx context.Context, runID string) (backend.RunInfo, error) {
	for {
		info, err := c.store.GetRun(ctx, runID)
		if err != nil {
			return backend.RunInfo{}, err
		}
		if info.Status.Terminal() {
			return info, nil
		}
		if err := c.WaitChange(ctx, info); err != nil {
			return backend.RunInfo{}, err
		}
	}
}

// WaitChange waits until the run has moved on since info was read (its
// Version), or ctx is done: until a commit changed its status or its
// generation, or left it waiting (again), parked or ended. It does not
// return for the steps of a run that keeps running, so a caller waiting
// for a result, an approval or a wait is woken a few times per run, not
// once per step (see backend.Watcher); one that follows the steps calls
// WaitCommit. It watches the store where the store can (Watcher);
// otherwise it polls with a growing interval, at most half a second, and
// returns at any change of the record. Either way a caller re-reads the
// run after it returns.
func (c *Client) WaitChange(ctx context.Context, info backend.RunInfo) error {
	if watcher, ok := c.store.(backend.Watcher); ok {
		return watcher.WatchRun(ctx, info.ID, info.Version)
	}
	return c.poll(ctx, info)
}

// WaitCommit waits until the record of a run has changed since info was
// read (its Version), a step included, or ctx is done: for a caller that
// follows a run step by step, or waits for an event in its history. It
// watches the store where the store can (Watcher), and otherwise polls as
// WaitChange does.
func (c *Client) WaitCommit(ctx context.Context, info backend.RunInfo) error {
	if watcher, ok := c.store.(backend.Watcher); ok {
		return watcher.WatchCommits(ctx, info.ID, info.Version)
	}
	return c.poll(ctx, info)
}

// poll waits, with a growing interval, until the run's record has
// changed since info was read.
func (c *Client) poll(ctx context.Context, info backend.RunInfo) error {
	backoff := 5 * time.Millisecond
	for {
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		now, err := c.store.GetRun(ctx, info.ID)
		if err != nil || now.Version != info.Version {
			return err
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// childTrace is the trace of a child run started by step of run parent: it
// hangs under that step's span.
func childTrace(parent backend.RunInfo, step int) backend.Trace {
	t := parent.Trace
	if t.IsZero() {
		return t
	}
	t.Parent = t.StepSpanID(parent.ID, parent.Generation, step, 0)
	return t
}
