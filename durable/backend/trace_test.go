package backend_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable/backend"
)

func TestTraceText(t *testing.T) {
	const text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var tr backend.Trace
	require.NoError(t, tr.UnmarshalText([]byte(text)))
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", tr.TraceID.String())
	assert.Equal(t, "00f067aa0ba902b7", tr.Parent.String())
	assert.True(t, tr.Sampled())
	out, err := tr.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, text, string(out))

	root := "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-00"
	require.NoError(t, tr.UnmarshalText([]byte(root)))
	assert.False(t, tr.Parent.IsValid(), "a trace without a parent")
	assert.False(t, tr.Sampled())
	assert.False(t, tr.ParentContext().IsValid(), "a trace without a parent has a parent context")

	require.NoError(t, tr.UnmarshalText(nil))
	assert.True(t, tr.IsZero(), "empty text is the zero trace")

	for _, bad := range []string{
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short
		"00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01", // not hex
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",    // no flags
		"garbage",
	} {
		var got backend.Trace
		assert.Error(t, got.UnmarshalText([]byte(bad)), "%q decoded as %+v", bad, got)
	}
}

func TestSpanIDsAreDerived(t *testing.T) {
	tr := backend.TraceFrom(context.Background())
	require.True(t, tr.TraceID.IsValid(), "a trace started outside any span has a trace id")
	require.False(t, tr.Parent.IsValid(), "a trace started outside any span has no parent")
	require.True(t, tr.Sampled())

	ids := map[trace.SpanID]string{}
	add := func(id trace.SpanID, what string) {
		assert.True(t, id.IsValid(), "%s: invalid span id", what)
		other, dup := ids[id]
		assert.False(t, dup, "%s has the span id of %s", what, other)
		ids[id] = what
	}
	add(tr.RunSpanID("r1"), "run r1")
	add(tr.RunSpanID("r2"), "run r2")
	for gen := range 2 {
		for step := range 3 {
			for attempt := range 3 {
				add(tr.StepSpanID("r1", gen, step+1, attempt), "a step")
			}
		}
	}
	assert.Equal(t, tr.StepSpanID("r1", 0, 1, 1), tr.StepSpanID("r1", 0, 1, 1), "the same step has one span id")
	other := backend.TraceFrom(context.Background())
	assert.NotEqual(t, tr.TraceID, other.TraceID, "two traces share a trace id")
	assert.NotEqual(t, tr.RunSpanID("r1"), other.RunSpanID("r1"), "two traces share span ids")
}
