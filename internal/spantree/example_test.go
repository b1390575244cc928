package spantree_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/internal/spantree"
)

// Spans recorded in memory, written as a tree a person can read, and
// checked for a step reported twice.
func Example() {
	var rec spantree.Recorder
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(&rec))
	tracer := tp.Tracer("example")
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	ctx, root := tracer.Start(context.Background(), "handle request", trace.WithTimestamp(at(0)))
	ctx, run := tracer.Start(ctx, "invoke_agent support", trace.WithTimestamp(at(1)))
	_, chat := tracer.Start(ctx, "chat scripted", trace.WithTimestamp(at(2)),
		trace.WithAttributes(attribute.Int("cairn.step", 1)))
	chat.End(trace.WithTimestamp(at(5)))
	_, tool := tracer.Start(ctx, "execute_tool lookup_order", trace.WithTimestamp(at(6)),
		trace.WithAttributes(attribute.Int("cairn.step", 2)))
	tool.End(trace.WithTimestamp(at(8)))
	run.End(trace.WithTimestamp(at(30)))
	root.End(trace.WithTimestamp(at(31)))

	var tree strings.Builder
	if err := spantree.Write(&tree, rec.Spans()); err != nil {
		fmt.Println(err)
	}
	fmt.Print(tree.String())
	fmt.Println("shown once each:", spantree.CheckOnce(tree.String()) == nil)
	// Output:
	//  +0.000s   0.031s  handle request
	//  +0.001s   0.029s    invoke_agent support
	//  +0.002s   0.003s      chat scripted [step 1]
	//  +0.006s   0.002s      execute_tool lookup_order [step 2]
	// shown once each: true
}
