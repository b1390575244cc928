// Package benchflow holds the workflows that cairn's benchmarks run, so
// that every benchmark (of the engine, of the Redis store, of worker
// processes) measures the same steps.
package benchflow

import (
	"context"

	"github.com/cairn-dev/cairn/durable"
)

// Noop is the benchmarks' step: an activity that adds one to its input.
var Noop = durable.NewActivity("noop", func(ctx context.Context, n int) (int, error) { return n + 1, nil })

// Steps runs n Noop activities one after the other and returns n.
var Steps = durable.NewWorkflow("steps", func(ctx durable.Context, n int) (int, error) {
	for i := range n {
		if _, err := durable.Execute(ctx, Noop, i); err != nil {
			return 0, err
		}
	}
	return n, nil
})
