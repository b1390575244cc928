package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairn-dev/cairn/durable"
)

// Tool is a function a model can call, with its types erased to JSON so
// that tools of any types can be listed together. Make one with New. A
// Tool is immutable and safe for concurrent use.
type Tool struct {
	name        string
	description string
	schema      *argSchema
	settings    settings

	// prepare decodes and validates arguments (an *ArgumentError if they
	// are bad) and returns the call of the function with them. The call's
	// Result is not yet made valid UTF-8 nor truncated: Call does that.
	prepare func(args []byte) (func(context.Context) (Result, error), error)
	// policy, if set, decides approval from the arguments.
	policy func(args []byte) (bool, error)
	// intercept, if set, takes the calls of the tool (see Intercept).
	intercept Interceptor
}

// Interceptor takes a tool's calls in the place of its function: it gets
// the arguments, validated against the tool's schema, and next, which
// runs the tool's own call (Call of the tool intercepted). It returns
// what Call returns. It must be safe for concurrent use.
type Interceptor func(ctx context.Context, args json.RawMessage, next func(context.Context) (Result, error)) (Result, error)

// Intercept returns a tool with t's name, description, schema and
// settings whose calls go to fn, which may answer them itself or call
// next. Arguments that break the schema never reach fn: the model is told,
// as by Call. Test harnesses use it to stand a fixture in for a tool, or
// to count a tool's executions; t is not changed.
func (t *Tool) Intercept(fn Interceptor) *Tool {
	c := *t
	inner := t
	c.intercept = func(ctx context.Context, args json.RawMessage, _ func(context.Context) (Result, error)) (Result, error) {
		return fn(ctx, args, func(ctx context.Context) (Result, error) { return inner.Call(ctx, args) })
	}
	return &c
}

// Result is what the model reads back from a call. It is plain data, to
// be journaled as JSON.
type Result struct {
	// Content is the tool's output encoded as JSON or, if IsError, a
	// message for the model. It is valid UTF-8.
	Content string `json:"content"`
	// IsError marks a call that failed in a way the model should hear
	// about: bad arguments, an unknown tool, an error of the tool.
	IsError bool `json:"is_error,omitempty"`
	// Truncated marks content cut at the tool's MaxResultBytes; the
	// content ends with a note saying so.
	Truncated bool `json:"truncated,omitempty"`
}

// New makes a tool of fn. The name must be 1 to 64 letters, digits, '_'
// or '-'. In must encode as a JSON object (a struct or a map with string
// keys); its JSON Schema, generated from its struct tags, is what the model
// is shown and what arguments are checked against. Out is encoded to JSON
// for the model.
//
// fn may be called concurrently, and again for the same tool call when an
// attempt is retried: see HonorsIdempotencyKey. It returns Fatal(err) to
// stop the run, Retryable(err) for a transient failure, or any other error
// for the model to read.
func New[In, Out any](name, description string, fn func(context.Context, In) (Out, error), opts ...Option) (*Tool, error) {
	st, err := newSettings(name, fn == nil, opts)
	if err != nil {
		return nil, err
	}
	schema, err := newArgSchema(reflect.TypeFor[In]())
	if err != nil {
		return nil, fmt.Errorf("tool %s: %w", name, err)
	}
	t := &Tool{name: name, description: description, schema: schema, settings: st}
	decode := func(args []byte) (In, error) {
		var in In
		err := schema.decode(name, args, &in)
		return in, err
	}
	t.prepare = func(args []byte) (func(context.Context) (Result, error), error) {
		in, err := decode(args)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (Result, error) {
			out, err := fn(ctx, in)
			if err != nil {
				return Result{}, err
			}
			b, err := json.Marshal(out)
			if err != nil {
				return Result{}, &encodeError{err}
			}
			return Result{Content: string(b)}, nil
		}, nil
	}
	if st.policy != nil {
		p, ok := st.policy.(func(In) bool)
		if !ok {
			return nil, fmt.Errorf("tool %s: approval policy %T does not take the tool's arguments %v", name, st.policy, reflect.TypeFor[In]())
		}
		t.policy = checkedPolicy(name, decode, p)
	}
	return t, nil
}

// newSettings checks a new tool's name and function (noFn: it is nil) and
// returns its settings: the defaults, changed by opts.
func newSettings(name string, noFn bool, opts []Option) (settings, error) {
	if err := checkName(name); err != nil {
		return settings{}, fmt.Errorf("tool: %w", err)
	}
	if noFn {
		return settings{}, fmt.Errorf("tool %s: nil function", name)
	}
	st := settings{maxResultBytes: DefaultMaxResultBytes}
	for _, o := range opts {
		if o.apply == nil {
			continue
		}
		if err := o.apply(&st); err != nil {
			return settings{}, fmt.Errorf("tool %s: %w", name, err)
		}
	}
	return st, nil
}

// checkedPolicy returns approval policy p of tool name over encoded
// arguments: they are decoded first (bad ones give decode's error), and a
// panic in p is a *PanicError.
func checkedPolicy[In any](name string, decode func([]byte) (In, error), p func(In) bool) func([]byte) (bool, error) {
	return func(args []byte) (ok bool, err error) {
		in, err := decode(args)
		if err != nil {
			return false, err
		}
		defer func() {
			if r := recover(); r != nil {
				ok, err = false, &PanicError{Tool: name, Value: r, Stack: string(debug.Stack())}
			}
		}()
		return p(in), nil
	}
}

// MustNew is New that panics on error, for tools defined at start-up.
func MustNew[In, Out any](name, description string, fn func(context.Context, In) (Out, error), opts ...Option) *Tool {
	t, err := New(name, description, fn, opts...)
	if err != nil {
		panic("tools: " + err.Error())
	}
	return t
}

// checkName checks a tool or toolset name: 1 to 64 ASCII letters, digits,
// '_' or '-', the intersection of what model providers accept.
func checkName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("name %q: want 1 to 64 characters", name)
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("name %q: want only letters, digits, '_' and '-'", name)
		}
	}
	return nil
}

// Name returns the tool's name.
func (t *Tool) Name() string { return t.name }

// Description returns the tool's description, for the model.
func (t *Tool) Description() string { return t.description }

// Schema returns the JSON Schema of the tool's arguments, without $schema
// or $id, inline unless the argument type is recursive. The caller may
// modify the returned bytes.
func (t *Tool) Schema() json.RawMessage { return append(json.RawMessage(nil), t.schema.raw...) }

// Timeout returns the tool's timeout; zero means none of its own.
func (t *Tool) Timeout() time.Duration { return t.settings.timeout }

// RetryPolicy returns how failed attempts of the tool are to be retried,
// as set with Retry; zero fields take the defaults Retry describes.
func (t *Tool) RetryPolicy() durable.RetryPolicy { return t.settings.retry }

// HonorsIdempotencyKey reports whether the tool passes IdempotencyKey(ctx)
// on, so that running a call again does not repeat its side effect.
func (t *Tool) HonorsIdempotencyKey() bool { return t.settings.idempotent }

// MaxResultBytes returns the size above which results are truncated.
func (t *Tool) MaxResultBytes() int { return t.settings.maxResultBytes }

// RequiresApproval reports whether some or all of the tool's calls wait
// for a human's approval: it was given RequireApproval or
// RequireApprovalIf. NeedsApproval decides for one call.
func (t *Tool) RequiresApproval() bool { return t.settings.approval || t.policy != nil }

// NeedsApproval reports whether a call with these arguments must wait for
// a human's approval before Call runs it; Call itself does not check.
// Arguments that Call would reject need no approval: NeedsApproval then
// returns false and the *ArgumentError. A panicking policy gives false
// and a *PanicError.
func (t *Tool) NeedsApproval(args json.RawMessage) (bool, error) {
	if t.settings.approval {
		if _, err := t.prepare(args); err != nil {
			return false, err
		}
		return true, nil
	}
	if t.policy == nil {
		return false, nil
	}
	return t.policy(args)
}

// Validate checks arguments as Call would, without running the tool. The
// error is nil or an *ArgumentError.
func (t *Tool) Validate(args json.RawMessage) error {
	_, err := t.prepare(args)
	return err
}

// Call runs the tool with arguments from the model, JSON in and Result
// out. It never panics.
//
// Bad arguments (malformed JSON, invalid UTF-8, a schema violation) and
// errors the tool returns give a Result with IsError set that the model
// reads; bad arguments never reach the tool function. A non-nil error
// means there is no result for the model:
//
//   - IsFatal(err): the tool returned Fatal; stop the run.
//   - AsNeedsInput(err): the tool returned NeedInput; get the input and
//     call it again with WithInput.
//   - otherwise the attempt failed (ErrTimeout, ErrPanic, an error marked
//     Retryable, or the context's cause if ctx was canceled): retry it per
//     RetryPolicy.
//
// Call returns when ctx is done or the timeout passes, even if the tool
// function ignores its context and goes on running. Call does not ask for
// approval: check NeedsApproval first.
func (t *Tool) Call(ctx context.Context, args json.RawMessage) (Result, error) {
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("tool %s: %w", t.name, context.Cause(ctx))
	}
	run, err := t.prepare(args)
	if err != nil {
		return t.errorResult(err.Error()), nil
	}
	if t.intercept != nil {
		return t.intercept(ctx, args, nil)
	}
	out, err := t.invoke(ctx, run)
	var ee *encodeError
	var re *retryableError
	switch {
	case err == nil:
		return t.result(strings.ToValidUTF8(out.Content, "\uFFFD"), out.IsError), nil
	case IsFatal(err), errors.As(err, &re), errors.Is(err, ErrPanic), errors.Is(err, ErrTimeout), ctx.Err() != nil:
		return Result{}, fmt.Errorf("tool %s: %w", t.name, err)
	case errors.As(err, new(*NeedsInputError)):
		return Result{}, fmt.Errorf("tool %s: %w", t.name, err)
	case errors.As(err, &ee):
		return t.errorResult(fmt.Sprintf("tool %s returned a result that cannot be encoded as JSON: %v", t.name, ee.err)), nil
	default:
		return t.errorResult(fmt.Sprintf("tool %s failed: %v", t.name, err)), nil
	}
}

// invoke runs the prepared call in its own goroutine, with the tool's
// timeout, turning panics into a *PanicError.
func (t *Tool) invoke(ctx context.Context, run func(context.Context) (Result, error)) (Result, error) {
	parent := ctx
	if t.settings.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, t.settings.timeout, ErrTimeout)
		defer cancel()
	}
	type outcome struct {
		out Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		finished := false
		defer func() {
			if !finished {
				// A panic, or runtime.Goexit (recover gives nil).
				r := recover()
				if r == nil {
					r = "runtime.Goexit"
				}
				done <- outcome{err: &PanicError{Tool: t.name, Value: r, Stack: string(debug.Stack())}}
			}
		}()
		out, err := run(ctx)
		finished = true
		done <- outcome{out, err}
	}()
	var o outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		select {
		case o = <-done:
		default:
			o.err = ctx.Err()
		}
	}
	if o.err != nil && ctx.Err() != nil && !errors.Is(o.err, ErrPanic) && !IsFatal(o.err) {
		// Cut short: say why, not what the function made of it.
		if parent.Err() == nil {
			return Result{}, fmt.Errorf("%w after %v", ErrTimeout, t.settings.timeout)
		}
		return Result{}, context.Cause(parent)
	}
	return o.out, o.err
}

// encodeError means the tool's output could not be encoded to JSON.
type encodeError struct{ err error }

func (e *encodeError) Error() string { return "encode result: " + e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }

func (t *Tool) errorResult(msg string) Result {
	return t.result(strings.ToValidUTF8(msg, "\uFFFD"), true)
}

// result truncates content at the tool's limit, on a UTF-8 boundary,
// adding a note for the model.
func (t *Tool) result(content string, isError bool) Result {
	limit := t.settings.maxResultBytes
	if len(content) <= limit {
		return Result{Content: content, IsError: isError}
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(content[cut]) {
		cut--
	}
	content = fmt.Sprintf("%s\n[truncated: the result was %d bytes; only the first %d are shown]", content[:cut], len(content), cut)
	return Result{Content: content, IsError: isError, Truncated: true}
}

// Definition describes the tool for a model provider.
func (t *Tool) Definition() Definition {
	return Definition{Name: t.name, Description: t.description, Parameters: t.Schema()}
}

// Definition is a provider-neutral description of a tool: what a model
// provider converts to its own wire format to offer the tool to a model.
type Definition struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Parameters is the JSON Schema of the arguments, an object schema.
	Parameters json.RawMessage `json:"parameters"`
}
