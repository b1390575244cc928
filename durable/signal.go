package durable

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Signal is a named message with a payload of type T that is sent to a run
// from outside (Send) and received by its workflow code (Receive). Signals
// are kept in the run's inbox until its worker moves them into history, and
// in the run until the workflow receives them, in the order they were sent:
// a signal sent before the workflow listens is not lost.
type Signal[T any] struct{ name string }

// NewSignal names a signal with a payload of type T.
func NewSignal[T any](name string) Signal[T] {
	if name == "" {
		panic("durable: NewSignal needs a name")
	}
	return Signal[T]{name: name}
}

// Name returns the signal's name.
func (s Signal[T]) Name() string { return s.name }

// Send sends v to the run. It returns an error wrapping ErrRunNotFound for
// an unknown run and ErrRunEnded for a run that has ended.
func (s Signal[T]) Send(ctx context.Context, c *Client, runID string, v T) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("signal %s: encode payload: %w", s.name, err)
	}
	return c.send(ctx, runID, backend.Event{Type: backend.EventSignalReceived, Name: s.name, Payload: payload, Sender: SenderFrom(ctx)})
}

// Receive waits for the next signal and returns its payload. A payload
// that does not decode as T gives an error; the signal is consumed either
// way. With a cancelable ctx it returns ErrCanceled if the run is canceled
// first.
func (s Signal[T]) Receive(ctx Context) (T, error) {
	rt := ctx.runtime()
	if err := rt.wait(ctx, &description{kind: "signal", name: s.name}, s.queued(rt)); err != nil {
		var zero T
		return zero, err
	}
	v, _, err := s.TryReceive(ctx)
	return v, err
}

// ReceiveTimeout waits at most d for the next signal. ok is false if the
// time ran out first.
func (s Signal[T]) ReceiveTimeout(ctx Context, d time.Duration) (v T, ok bool, err error) {
	rt := ctx.runtime()
	rt.check()
	if s.queued(rt)() {
		return s.TryReceive(ctx)
	}
	timer := NewTimer(ctx, d)
	i, err := Select(ctx, s.Ready(ctx), timer)
	if err != nil {
		rt.cancelTimer(timer)
		return v, false, err
	}
	if i == 1 {
		return v, false, nil
	}
	rt.cancelTimer(timer)
	return s.TryReceive(ctx)
}

// TryReceive returns the next signal if one has arrived, without waiting.
func (s Signal[T]) TryReceive(ctx Context) (v T, ok bool, err error) {
	rt := ctx.runtime()
	rt.check()
	q := rt.signals[s.name]
	if len(q) == 0 {
		return v, false, nil
	}
	e := q[0]
	rt.signals[s.name] = q[1:]
	if len(q) == 1 {
		delete(rt.signals, s.name)
	}
	if err := json.Unmarshal(e.Payload, &v); err != nil {
		return v, true, fmt.Errorf("signal %s (history position %d): decode payload: %w", s.name, e.Seq, err)
	}
	return v, true, nil
}

// Ready returns a Waitable that is ready while a signal waits to be
// received, for Select.
func (s Signal[T]) Ready(ctx Context) Waitable {
	return signalReady{queued: s.queued(ctx.runtime()), name: s.name}
}

func (s Signal[T]) queued(rt *workflowRuntime) func() bool {
	return func() bool { return len(rt.signals[s.name]) > 0 }
}

// signalReady is ready when a signal is queued.
type signalReady struct {
	queued func() bool
	name   string
}

func (r signalReady) ready() bool        { return r.queued() }
func (r signalReady) waitingFor() string { return "signal " + r.name }

type senderKey struct{}

// WithSender returns a context that names who sends signals and
// cancellations made with it; the name is recorded in history.
func WithSender(ctx context.Context, sender string) context.Context {
	return context.WithValue(ctx, senderKey{}, sender)
}

// SenderFrom returns the sender named by WithSender, or "".
func SenderFrom(ctx context.Context) string {
	s, _ := ctx.Value(senderKey{}).(string)
	return s
}
