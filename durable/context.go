package durable

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Context is what workflow code gets instead of a context.Context: the run's
// identity, its cancellation, and the handle that the functions of this
// package (Execute, Sleep, Receive, ...) need. It is not a context.Context
// on purpose, so it cannot be handed to code that does I/O.
//
// A Context is only valid inside the workflow function and the coroutines it
// starts with Go, and only while the workflow runs.
type Context interface {
	// RunID returns the id of the run.
	RunID() string
	// Workflow returns the name of the run's workflow.
	Workflow() string
	// Err returns nil, or ErrCanceled once the run's cancellation has been
	// delivered and the context is cancelable (see WithoutCancel).
	Err() error

	runtime() *workflowRuntime
	cancelable() bool
	parentStep() int
}

type workflowContext struct {
	rt       *workflowRuntime
	noCancel bool
	parent   int // the step the spans of steps issued with it hang under; 0: the run
}

func (c workflowContext) RunID() string             { return c.rt.runID }
func (c workflowContext) Workflow() string          { return c.rt.def.name }
func (c workflowContext) runtime() *workflowRuntime { return c.rt }
func (c workflowContext) cancelable() bool          { return !c.noCancel }
func (c workflowContext) parentStep() int           { return c.parent }
func (c workflowContext) Err() error {
	if c.rt.canceled && !c.noCancel {
		return ErrCanceled
	}
	return nil
}

// WithoutCancel returns a context that is never canceled: calls made with it
// run to completion even after the run is canceled. Use it to clean up, for
// example to run compensations after a cancellation.
func WithoutCancel(ctx Context) Context {
	return workflowContext{rt: ctx.runtime(), noCancel: true, parent: ctx.parentStep()}
}

// WithinStep returns a context whose steps (activities, timers, child runs,
// side effects) are reported under the span of step, an earlier step of
// the run, instead of the run's: a layer that shows a piece of workflow
// code as one span (the agent's workflow tools) nests what that code does
// under it. step is typically LastStep's value after the Record that opens
// the piece. It is journaled with each step's end (backend.Event.Parent);
// replay does not compare it.
func WithinStep(ctx Context, step int) Context {
	return workflowContext{rt: ctx.runtime(), noCancel: !ctx.cancelable(), parent: step}
}

// LastStep returns the step of the last command the workflow issued
// (Execute's activity, a timer, a child run, a side effect or Record), 0
// if none: deterministic, as steps are numbered in the order the code
// issues them.
func LastStep(ctx Context) int {
	rt := ctx.runtime()
	rt.check()
	return rt.lastStep
}

// coroutine is one thread of workflow code: the workflow function or a
// function started with Go. Coroutines run one at a time, handing control
// back and forth with the scheduler, so workflow code is never concurrent.
type coroutine struct {
	resume  chan struct{}
	yield   chan struct{}
	until   func() bool  // what the coroutine waits for; nil when runnable
	waiting fmt.Stringer // what it waits for, in words
	since   time.Time    // when it began to wait
	done    bool
}

// spawn starts fn as a new coroutine. It first runs at the scheduler's
// next turn, after the coroutines created before it.
func (rt *workflowRuntime) spawn(fn func()) {
	co := &coroutine{resume: make(chan struct{}), yield: make(chan struct{})}
	rt.coroutines = append(rt.coroutines, co)
	go func() {
		returned := false
		defer func() {
			if !returned {
				if r := recover(); r != nil && !rt.killing {
					rt.panicked(r, debug.Stack())
				}
			}
			co.done = true
			co.yield <- struct{}{}
		}()
		<-co.resume
		if rt.stopped() {
			runtime.Goexit()
		}
		fn()
		returned = true
	}()
}

// stopped reports whether coroutines must stop: the workflow has ended, the
// runtime is being torn down, or it hit an error that parks the run.
func (rt *workflowRuntime) stopped() bool {
	return rt.killing || rt.fatal != nil || rt.outcome != nil
}

// wait blocks the current coroutine until cond holds. With a cancelable ctx
// it returns ErrCanceled if the run is canceled before that.
func (rt *workflowRuntime) wait(ctx Context, what fmt.Stringer, cond func() bool) error {
	rt.check()
	canceled := func() bool { return ctx.cancelable() && rt.canceled }
	if cond() {
		return nil
	}
	if canceled() {
		return ErrCanceled
	}
	co := rt.current
	if co == nil {
		panic("durable: workflow function called outside workflow code")
	}
	co.until = func() bool { return cond() || canceled() }
	co.waiting, co.since = what, rt.now
	co.yield <- struct{}{}
	<-co.resume
	co.until, co.waiting = nil, nil
	if rt.stopped() {
		runtime.Goexit()
	}
	if !cond() {
		return ErrCanceled
	}
	return nil
}

// check stops the calling coroutine if the runtime is stopping. Every
// workflow function calls it first.
func (rt *workflowRuntime) check() {
	if rt.stopped() {
		runtime.Goexit()
	}
}

// runUntilBlocked runs coroutines, in the order they were created, until
// none of them can make progress.
func (rt *workflowRuntime) runUntilBlocked() {
	for progress := true; progress && !rt.stopped(); {
		progress = false
		for i := 0; i < len(rt.coroutines) && !rt.stopped(); i++ {
			co := rt.coroutines[i]
			if co.done || (co.until != nil && !co.until()) {
				continue
			}
			rt.current = co
			co.resume <- struct{}{}
			<-co.yield
			rt.current = nil
			progress = true
		}
		live := rt.coroutines[:0]
		for _, co := range rt.coroutines {
			if !co.done {
				live = append(live, co)
			}
		}
		clear(rt.coroutines[len(live):])
		rt.coroutines = live
	}
}

// close ends every coroutine, running their deferred calls, and frees the
// goroutines. The runtime is unusable afterwards.
func (rt *workflowRuntime) close() {
	rt.killing = true
	for _, co := range rt.coroutines {
		if !co.done {
			rt.current = co
			co.resume <- struct{}{}
			<-co.yield
		}
	}
	rt.current = nil
	rt.coroutines = nil
}

// signalWaitStart returns when the workflow began waiting for the signal
// name (alone, or among what a Select waits for), or zero if it does not.
func (rt *workflowRuntime) signalWaitStart(name string) time.Time {
	var since time.Time
	for _, co := range rt.coroutines {
		d, ok := co.waiting.(*description)
		if co.done || !ok || !d.waitsForSignal(name) {
			continue
		}
		if since.IsZero() || co.since.Before(since) {
			since = co.since
		}
	}
	return since
}

// waiting describes what the run's coroutines wait for.
func (rt *workflowRuntime) waiting() string {
	s := ""
	for _, co := range rt.coroutines {
		if co.done || co.waiting == nil {
			continue
		}
		if s != "" {
			s += "; "
		}
		s += co.waiting.String()
	}
	return s
}

func (rt *workflowRuntime) panicked(r any, stack []byte) {
	if rt.outcome != nil {
		return
	}
	rt.finish(nil, &backend.Failure{Message: fmt.Sprintf("workflow panic: %v", r), Kind: backend.KindPanic, Stack: string(stack)})
}
