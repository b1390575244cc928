package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/redistest"
)

// check checks the example's output: the preference learned and used,
// and the prompt bounded with the policy, growing without.
func check(t *testing.T, out string) {
	t.Helper()
	inOrder(t, out,
		"What the assistant remembers about ana",
		"The user wants to be contacted by email only, never by phone.",
		"Can I be contacted when it ships?",
		"I will email you the moment it ships, as you prefer.",
		"Part 2")
	rows := regexp.MustCompile(`(?m)^(\d+)\s+(\d+)\s+(\d+)$`).FindAllStringSubmatch(out, -1)
	require.Len(t, rows, 7, out)
	prevWithout := 0
	for _, r := range rows {
		without, _ := strconv.Atoi(r[2])
		with, _ := strconv.Atoi(r[3])
		assert.Greater(t, without, prevWithout, "without a policy the prompt grows: %v", r)
		assert.LessOrEqual(t, with, 1000, "with a policy the prompt stays within its budget: %v", r)
		prevWithout = without
	}
	assert.Greater(t, prevWithout, 4000)
	assert.Contains(t, out, "4 generations")
	assert.Regexp(t, `The user talked about .* \(10\)`, out)
}

func runExample(t *testing.T, redisURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, mainErr(ctx, &out, redisURL), out.String())
	return out.String()
}

func TestRunInMemory(t *testing.T) {
	check(t, runExample(t, ""))
}

// TestRunOnRedis runs the example twice on one Redis: each run starts
// afresh, and each learns the preference once.
func TestRunOnRedis(t *testing.T) {
	url := redistest.Start(t).URL()
	first := runExample(t, url)
	check(t, first)
	check(t, runExample(t, url))
	assert.Equal(t, 1, strings.Count(first, "  - "), "one memory:\n%s", first)
}

// inOrder checks that got holds each of want, in order.
func inOrder(t *testing.T, got string, want ...string) {
	t.Helper()
	rest := got
	for _, w := range want {
		require.Contains(t, rest, w, "output lacks %q after what came before:\n%s", w, got)
		rest = rest[strings.Index(rest, w)+len(w):]
	}
}
