// Package spantree is for cairn's examples and documentation: it sets up
// an example's OpenTelemetry with agent/otelsetup, with a TracerProvider
// that also keeps the spans it ends in memory (spans, metrics and logs are
// exported when the OTEL_* variables ask for it), and
// renders spans as an indented tree that a person can read in a terminal:
//
//	+0.000s   0.000s  handle request
//	+0.000s   0.023s    invoke_agent support [completed, tokens 762 in/71 out, replayed]
//	+0.000s   0.001s      chat scripted [step 1, tokens 211 in/15 out]
//	+0.001s   0.000s      execute_tool lookup_order [step 2]
//	+0.001s   0.021s      await_approval refund [step 5, approved by alice@example.com, replayed]
//
// Each line gives the span's start, as an offset from the start of its
// tree's root, its duration, its name indented by its depth, and a few of
// its attributes. It is not meant for production: a real service exports
// its spans to a collector and looks at them there.
package spantree

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/agent/otelsetup"
)

// Tracing is an example's OpenTelemetry: the providers of
// otelsetup.FromEnv for a program named service (the resource's
// service.name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES sets
// it), whose TracerProvider takes the span ids cairn derives and samples
// as OTEL_TRACES_SAMPLER says (default: as parents say).
//
// Every sampled span it ends is handed synchronously to Recorder, before
// End returns. When OTEL_EXPORTER_OTLP_ENDPOINT (or a signal's own
// endpoint, or OTEL_*_EXPORTER) is set, spans, metrics and logs are also
// exported as the standard OTEL_* variables say; otherwise nothing leaves
// the process.
type Tracing struct {
	OTel     *otelsetup.Providers
	Provider *sdktrace.TracerProvider // OTel.TracerProvider
	Recorder *Recorder
	// Logger writes as slog.Default does and to OTel's LoggerProvider.
	Logger *slog.Logger
}

// Setup starts the telemetry of a program named service. Call Shutdown
// once, before the program exits.
func Setup(ctx context.Context, service string) (*Tracing, error) {
	t := &Tracing{Recorder: &Recorder{}}
	p, err := otelsetup.FromEnv(ctx, otelsetup.Options{ServiceName: service,
		SpanProcessors: []sdktrace.SpanProcessor{sdktrace.NewSimpleSpanProcessor(t.Recorder)}})
	if err != nil {
		return nil, fmt.Errorf("spantree: %w", err)
	}
	t.OTel, t.Provider = p, p.TracerProvider
	t.Logger = slog.New(slog.NewMultiHandler(slog.Default().Handler(), p.LogHandler()))
	return t, nil
}

// Options returns agent.Options with the providers and Logger set.
func (t *Tracing) Options() agent.Options {
	return agent.Options{TracerProvider: t.OTel.TracerProvider, MeterProvider: t.OTel.MeterProvider, Logger: t.Logger}
}

// InSpan calls fn under a span of the program's own, as the handler of a
// request to a service would: a run fn starts hangs under it.
func (t *Tracing) InSpan(ctx context.Context, name string, fn func(context.Context) error) error {
	ctx, span := t.Provider.Tracer("cairn-example").Start(ctx, name)
	defer span.End()
	err := fn(ctx)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// PrintRun writes "Trace:" and the spans recorded so far as a tree, once
// the span of run runID's end is among them, or wait has passed (a run
// that ended in an earlier process has its span there, not here).
func (t *Tracing) PrintRun(ctx context.Context, w io.Writer, runID string, wait time.Duration) error {
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, err := t.Recorder.Wait(waitCtx, RunEnded(runID))
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Fprintln(w, "\nTrace:")
	if err != nil {
		fmt.Fprintf(w, "(run %s did not end in this process: its own span is not here)\n", runID)
	}
	return Write(w, t.Recorder.Spans())
}

// Shutdown sends the spans, metrics and logs still to be exported, within
// a few seconds even if ctx is done, and shuts the providers down. The
// Recorder keeps its spans.
func (t *Tracing) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return t.OTel.Shutdown(ctx)
}

// Recorder is a sdktrace.SpanExporter that keeps in memory the spans it is
// given, in the order they arrive. Install it with sdktrace.WithSyncer so
// that a span is recorded by the time its End returns. The zero value is
// ready to use; a Recorder is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	spans   []sdktrace.ReadOnlySpan
	changed chan struct{} // closed and replaced when spans arrive; nil until waited on
}

// ExportSpans records spans. It never fails.
func (r *Recorder) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, spans...)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	return nil
}

// Shutdown does nothing: the spans stay readable.
func (r *Recorder) Shutdown(context.Context) error { return nil }

// Spans returns the spans recorded so far, in arrival order, in a slice
// of the caller's.
func (r *Recorder) Spans() []sdktrace.ReadOnlySpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Wait waits until a span for which match returns true has been recorded
// (maybe already), and returns the first such span; or returns ctx's
// error if ctx ends first. match is called without any lock held.
func (r *Recorder) Wait(ctx context.Context, match func(sdktrace.ReadOnlySpan) bool) (sdktrace.ReadOnlySpan, error) {
	seen := 0
	for {
		r.mu.Lock()
		spans := r.spans[seen:len(r.spans):len(r.spans)]
		if len(spans) == 0 && r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		for _, s := range spans {
			if match(s) {
				return s, nil
			}
		}
		seen += len(spans)
		if len(spans) > 0 {
			continue // more may have come meanwhile
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// RunEnded returns a match for Recorder.Wait: it reports whether a span
// is the one cairn emits when the run runID ends (invoke_agent, with
// cairn.run.id runID), right after the run's last commit.
func RunEnded(runID string) func(sdktrace.ReadOnlySpan) bool {
	return func(s sdktrace.ReadOnlySpan) bool {
		var op, id string
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case "gen_ai.operation.name":
				op = kv.Value.Emit()
			case "cairn.run.id":
				id = kv.Value.Emit()
			}
		}
		return op == "invoke_agent" && id == runID
	}
}

// Layout of a line of Write.
const (
	maxLine  = 110 // runes in a line, at most
	maxName  = 60  // runes of a span's name, at most
	minName  = 24  // runes of a span's name kept however long its notes
	maxError = 40  // runes of an error's description, at most
	indent   = "  "
)

// Write writes spans to w as trees, one line per span, each span under its
// parent: a span whose parent is not among spans is the root of a tree.
// Trees, and the children of a span, are in the order of their start
// times (then of their names and ids, so that the output depends only on
// what the spans hold, not on their order in spans). A line reads
//
//	<start offset> <duration>  <indented name> [<attributes>]
//
// where the offset is from the start of the tree's root, both in seconds
// with three decimals, and the attributes, those of cairn's spans that say
// most, are: the run's status and token usage (invoke_agent); the step
// (cairn.step) and its history (cairn.run.generation, when not the
// first); the attempt (cairn.attempt) when it is not the first or it
// failed; for a failed span, its error.type and status description; the
// token usage of a model call (chat); who decided an approval and how
// (await_approval); and "replayed" when cairn.replayed is true. Long
// values are cut short with "…"; a line has at most 110 runes.
//
// Write returns the first error writing to w.
func Write(w io.Writer, spans []sdktrace.ReadOnlySpan) error {
	type key struct {
		trace trace.TraceID
		span  trace.SpanID
	}
	keyOf := func(sc trace.SpanContext) key { return key{sc.TraceID(), sc.SpanID()} }
	index := make(map[key]int, len(spans))
	for i, s := range spans {
		if _, dup := index[keyOf(s.SpanContext())]; !dup {
			index[keyOf(s.SpanContext())] = i
		}
	}
	children := make(map[int][]int, len(spans))
	var roots []int
	for i, s := range spans {
		p, ok := index[keyOf(s.Parent())]
		if ok && s.Parent().IsValid() && p != i {
			children[p] = append(children[p], i)
		} else {
			roots = append(roots, i)
		}
	}
	byStart := func(a, b int) int {
		sa, sb := spans[a], spans[b]
		return cmp.Or(sa.StartTime().Compare(sb.StartTime()), cmp.Compare(sa.Name(), sb.Name()),
			cmp.Compare(sa.SpanContext().SpanID().String(), sb.SpanContext().SpanID().String()), cmp.Compare(a, b))
	}
	slices.SortFunc(roots, byStart)

	var err error
	done := make([]bool, len(spans))
	var walk func(i, depth int, origin time.Time)
	walk = func(i, depth int, origin time.Time) {
		if done[i] || err != nil {
			return
		}
		done[i] = true
		_, err = io.WriteString(w, line(spans[i], depth, origin)+"\n")
		kids := children[i]
		slices.SortFunc(kids, byStart)
		for _, k := range kids {
			walk(k, depth+1, origin)
		}
	}
	for _, r := range roots {
		walk(r, 0, spans[r].StartTime())
	}
	// Spans in a cycle of parents (which real ids never make) are shown
	// rather than lost.
	for i := range spans {
		walk(i, 0, spans[i].StartTime())
	}
	return err
}

// line renders span s at depth, its offset counted from origin. A long
// name is cut short to leave room for the notes.
func line(s sdktrace.ReadOnlySpan, depth int, origin time.Time) string {
	dur := "-"
	if !s.EndTime().IsZero() {
		dur = fmt.Sprintf("%.3fs", s.EndTime().Sub(s.StartTime()).Seconds())
	}
	prefix := fmt.Sprintf("%8s %8s  %s", fmt.Sprintf("%+.3fs", s.StartTime().Sub(origin).Seconds()), dur,
		strings.Repeat(indent, depth))
	var suffix string
	if notes := notes(s); len(notes) > 0 {
		suffix = " [" + strings.Join(notes, ", ") + "]"
	}
	room := maxLine - utf8.RuneCountInString(prefix) - utf8.RuneCountInString(suffix)
	name := shorten(s.Name(), max(minName, min(maxName, room)))
	if over := utf8.RuneCountInString(prefix+name+suffix) - maxLine; over > 0 && suffix != "" {
		notes := strings.TrimSuffix(suffix, "]")
		suffix = shorten(notes, max(3, utf8.RuneCountInString(notes)-over)) + "]"
	}
	return shorten(prefix+name+suffix, maxLine)
}

// notes are the attributes of s that Write shows.
func notes(s sdktrace.ReadOnlySpan) []string {
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	str := func(k string) (string, bool) {
		v, ok := attrs[attribute.Key(k)]
		if !ok {
			return "", false
		}
		return v.Emit(), true
	}
	failed := s.Status().Code == codes.Error
	op, _ := str("gen_ai.operation.name")
	var out []string
	if op == "invoke_agent" {
		if st, ok := str("cairn.run.status"); ok {
			out = append(out, st)
		}
	}
	if step, ok := str("cairn.step"); ok {
		out = append(out, "step "+step)
	}
	if v, ok := attrs["cairn.run.generation"]; ok && v.AsInt64() > 0 {
		out = append(out, "history "+v.Emit())
	}
	if v, ok := attrs["cairn.attempt"]; ok && (v.AsInt64() > 1 || failed) {
		out = append(out, "attempt "+v.Emit())
	}
	if v, ok := attrs["cairn.attempt.retried"]; ok && v.AsBool() {
		out = append(out, "retried")
	}
	if errType, ok := str("error.type"); ok || failed {
		e := "error"
		if errType != "" {
			e += " " + shorten(errType, maxError)
		}
		if desc := s.Status().Description; failed && desc != "" {
			e += ": " + shorten(desc, maxError)
		}
		out = append(out, e)
	}
	if op == "chat" || op == "invoke_agent" {
		in, okIn := str("gen_ai.usage.input_tokens")
		o, okOut := str("gen_ai.usage.output_tokens")
		if okIn || okOut {
			out = append(out, fmt.Sprintf("tokens %s in/%s out", cmp.Or(in, "?"), cmp.Or(o, "?")))
		}
	}
	if strings.HasPrefix(s.Name(), "await_approval") {
		verdict := "decided"
		if v, ok := attrs["cairn.approval.approved"]; ok {
			verdict = map[bool]string{true: "approved", false: "rejected"}[v.AsBool()]
		}
		if by, ok := str("cairn.approval.by"); ok {
			out = append(out, verdict+" by "+shorten(by, maxError))
		}
	}
	if v, ok := attrs["cairn.replayed"]; ok && v.AsBool() {
		out = append(out, "replayed")
	}
	return out
}

// shorten puts s on one line and cuts it to at most n runes, ending it
// with "…" if cut.
func shorten(s string, n int) string {
	if strings.ContainsAny(s, "\n\r\t") {
		s = strings.Join(strings.Fields(s), " ")
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}
