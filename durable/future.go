package durable

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Waitable is something workflow code can wait for with Select and AwaitAll:
// a Future, or a signal channel (Signal.Ready).
type Waitable interface {
	ready() bool
	// waitingFor says what it is, for a run's Waiting.
	waitingFor() string
}

// Future is the result of something started in workflow code: an activity
// (Start), a timer (NewTimer), a child run (StartChild), a coroutine (Go).
type Future[T any] interface {
	Waitable
	// Get waits for the result. With a cancelable ctx it returns
	// ErrCanceled if the run is canceled first.
	Get(ctx Context) (T, error)
	// Ready reports whether Get would return without waiting.
	Ready() bool
}

type future[T any] struct {
	done bool
	val  T
	err  error
	what description
}

// description says what a future or a wait is, for Describe and errors:
// "activity charge (step 3)". It is rendered only when asked for.
type description struct {
	kind, name string
	step       int
	until      time.Time
	// of are what a Select or AwaitAll waits for.
	of []Waitable
}

func (d *description) String() string {
	s := d.kind
	if len(d.of) > 0 {
		parts := make([]string, len(d.of))
		for i, w := range d.of {
			parts[i] = w.waitingFor()
		}
		return s + ": " + strings.Join(parts, ", ")
	}
	if d.name != "" {
		s += " " + d.name
	}
	if !d.until.IsZero() {
		s += " until " + d.until.UTC().Format(time.RFC3339)
	}
	if d.step > 0 {
		s += fmt.Sprintf(" (step %d)", d.step)
	}
	return s
}

// waitsForSignal reports whether d is a wait for the signal name, alone or
// among what a Select waits for.
func (d *description) waitsForSignal(name string) bool {
	if d.kind == "signal" && d.name == name {
		return true
	}
	for _, w := range d.of {
		if s, ok := w.(signalReady); ok && s.name == name {
			return true
		}
	}
	return false
}

func (f *future[T]) ready() bool        { return f.done }
func (f *future[T]) waitingFor() string { return f.what.String() }
func (f *future[T]) Ready() bool        { return f.done }

func (f *future[T]) Get(ctx Context) (T, error) {
	if err := ctx.runtime().wait(ctx, &f.what, f.ready); err != nil {
		var zero T
		return zero, err
	}
	return f.val, f.err
}

func (f *future[T]) set(v T, err error) {
	f.val, f.err, f.done = v, err, true
}

// setPayload resolves the future with a journaled JSON value, or err.
func (f *future[T]) setPayload(payload []byte, err error) {
	var v T
	if err == nil && len(payload) > 0 {
		if decErr := json.Unmarshal(payload, &v); decErr != nil {
			err = fmt.Errorf("decode result of %s: %w", &f.what, decErr)
		}
	}
	f.set(v, err)
}

// Select waits until one of ws is ready and returns the index of the first
// ready one in argument order. Because results reach a workflow one at a
// time in history order, replay picks the same one. With a cancelable ctx
// it returns ErrCanceled if the run is canceled first.
func Select(ctx Context, ws ...Waitable) (int, error) {
	chosen := -1
	err := ctx.runtime().wait(ctx, &description{kind: "one of", of: ws}, func() bool {
		for i, w := range ws {
			if w.ready() {
				chosen = i
				return true
			}
		}
		return false
	})
	return chosen, err
}

// AwaitAll waits until every one of ws is ready. It does not return their
// errors: call Get on each.
func AwaitAll(ctx Context, ws ...Waitable) error {
	return ctx.runtime().wait(ctx, &description{kind: "all of", of: ws}, func() bool {
		for _, w := range ws {
			if !w.ready() {
				return false
			}
		}
		return true
	})
}

// Go runs fn as a coroutine of the workflow: concurrently with the code that
// called Go in the way goroutines are, but deterministically (coroutines
// take turns in a fixed order and only switch while waiting). Use it to run
// several multi-step branches at once, e.g. one per tool call, each waiting
// for its own approval. fn must follow the rules of workflow code.
func Go[T any](ctx Context, fn func(ctx Context) (T, error)) Future[T] {
	rt := ctx.runtime()
	rt.check()
	f := &future[T]{what: description{kind: "coroutine"}}
	rt.spawn(func() { f.set(fn(ctx)) })
	return f
}
