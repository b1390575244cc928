package cli_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
)

// TestFlagsBeforeCommand gives the global flags before the command name.
func TestFlagsBeforeCommand(t *testing.T) {
	w := newWorld(t)
	w.start(supportAgent(), "refund-8", agent.Input{Message: "Refund 120 euros."}, backend.StatusAwaitingApproval)
	after := w.cairn("show", "refund-8", "--redis", w.srv.URL())
	before := w.cairn("--redis", w.srv.URL(), "show", "refund-8")
	assert.Equal(t, 0, before.code, before.err)
	assert.Equal(t, after, before)
	before = w.cairn("--redis="+w.srv.URL(), "--json", "show", "refund-8")
	assert.Equal(t, 0, before.code, before.err)
	assert.Equal(t, w.cairn("show", "refund-8", "--json"), before)

	r := w.cairn("--redis", w.srv.URL())
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.err, "no command")
	r = w.cairn("--bogus", "runs")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.err, "flag provided but not defined: -bogus")
}
