package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/cairn-dev/cairn/agent"
)

// follow prints a run's live events as they come, until the run finishes.
// The live feed is kept by the store, so this could as well be another
// process, or a web page; a reader that reconnects passes the id of the
// last event it saw (here "": from the start) and misses nothing.
func follow(ctx context.Context, rt *agent.Runtime, runID string, out *console) error {
	return rt.Follow(ctx, runID, "", func(e agent.LiveEvent) error {
		switch e.Type {
		case agent.LiveTextDelta:
			out.text(e.Agent, e.Step, e.Text) // the model's answer, a few words at a time
		case agent.LiveAttemptAbandoned:
			// A retried model call streams its text again: what the
			// failed attempt streamed is void.
			fmt.Fprintf(out, "  [model] attempt %d failed; retrying (drop its text above, if any)\n", e.Attempt)
		case agent.LiveToolStarted:
			fmt.Fprintf(out, "  [tool] %s started %s\n", e.Tool, e.Arguments)
		case agent.LiveToolFinished:
			fmt.Fprintf(out, "  [tool] %s finished: %s\n", e.Tool, outcome(e))
		case agent.LiveToolFailed:
			fmt.Fprintf(out, "  [tool] %s attempt %d failed: %s\n", e.Tool, e.Attempt, e.Error)
		case agent.LiveRunFinished:
			if e.Error != "" {
				fmt.Fprintf(out, "Run %s %s: %s\n", e.RunID, e.Status, e.Error)
			} else {
				fmt.Fprintf(out, "Run %s %s\n", e.RunID, e.Status)
			}
		}
		return nil
	})
}

func outcome(e agent.LiveEvent) string {
	if e.Result == nil {
		return e.Error
	}
	return e.Result.Content
}

// console is the example's output, written at once by the reader of the
// live feed and by the tools as they run. It keeps lines whole: the model's
// text streams on a line of its own, which any other write ends first.
type console struct {
	mu       sync.Mutex
	w        io.Writer
	speaking bool // a line of model text is open
	step     int  // the model call whose text it is
}

// Write writes whole lines.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endTextLocked()
	return c.w.Write(p)
}

// text writes a piece of the text of the model call at step, after the
// agent's name if it starts a line.
func (c *console) text(name string, step int, piece string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.speaking && c.step != step {
		c.endTextLocked()
	}
	if !c.speaking {
		fmt.Fprintf(c.w, "%s: ", name)
		c.speaking, c.step = true, step
	}
	io.WriteString(c.w, piece)
}

// endText ends the line of model text, if one is open.
func (c *console) endText() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endTextLocked()
}

func (c *console) endTextLocked() {
	if c.speaking {
		io.WriteString(c.w, "\n")
		c.speaking = false
	}
}
