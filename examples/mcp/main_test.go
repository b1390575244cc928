package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/durable/inmem"
)

// TestExample runs the example as `go run ./examples/mcp` does.
func TestExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, inmem.New(), scriptedModel(), config{}), out.String())
	for _, want := range []string{
		"The warehouse offers 3 tools: count_shelf, reorder, stock",
		`[tool] stock {"item":"blue mug"}`,
		`[tool] count_shelf {"shelf":"B2"}`, // and its progress, unless it trails the result
		"[question] reorder: How many blue mugs should we reorder?",
		`[answer] accept {"quantity":24}`,
		`The tools said: shelf B2: 41 blue mugs; ordered 24 blue mugs, with the note "Please deliver by Friday."; blue mug: 42 on shelf B2`,
		"toolset:clerk            tools count_shelf, reorder, stock, hash ",
		"run_completed",
	} {
		assert.Contains(t, out.String(), want)
	}
}

func TestHeaderFlag(t *testing.T) {
	var h headerFlag
	require.NoError(t, h.Set("Authorization: Bearer x"))
	assert.Equal(t, "Bearer x", h["Authorization"][0])
	assert.Error(t, h.Set("no colon"))
	_, _, err := config{server: "a", url: "b"}.transport()
	assert.Error(t, err)
}
