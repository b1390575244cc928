package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/cairn-dev/cairn/agent"
)

// startLive prints the run's live events from now on, in the background,
// until the stop function it returns is called. stop(ended), for a run
// that ended, first lets the last events come, for a while.
func (w *watcher) startLive(ctx context.Context) (stop func(ended bool)) {
	// Skip what the feed holds already: the history tells the past.
	after := ""
	done, cancelDone := context.WithCancel(ctx)
	cancelDone()
	for {
		events, err := w.e.rt.LiveEvents(done, w.id, after)
		if err != nil || len(events) == 0 {
			break
		}
		after = events[len(events)-1].ID
	}
	lctx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		err := w.e.rt.Follow(lctx, w.id, after, func(ev agent.LiveEvent) error {
			w.live(ev)
			return nil
		})
		if err != nil && lctx.Err() == nil {
			fmt.Fprintf(w.e.errOut, "%s watch: live events: %v\n", w.e.app.name(), err)
		}
	}()
	return func(ended bool) {
		if ended {
			t := time.NewTimer(liveGrace)
			select {
			case <-finished:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		cancel()
		<-finished
		w.con.endText()
	}
}

// liveGrace is how long watch --live waits, after the run ended, for the
// live events still on their way.
const liveGrace = 3 * time.Second

// live prints a live event: model text as a stream, tool calls as lines.
// The other events have rows of their own in the history.
func (w *watcher) live(ev agent.LiveEvent) {
	switch ev.Type {
	case agent.LiveTextDelta:
		w.con.text(ev.Step, ev.Attempt, ev.Text)
	case agent.LiveAttemptAbandoned:
		w.con.line(fmt.Sprintf("  | step %d: model attempt %d abandoned; its text above is void", ev.Step, ev.Attempt))
	case agent.LiveToolStarted:
		w.con.line(fmt.Sprintf("  | step %d: tool %s started (%s) %s", ev.Step, ev.Tool, ev.CallID, cut(ev.Arguments, 60)))
	case agent.LiveToolFailed:
		w.con.line(fmt.Sprintf("  | step %d: tool %s failed (%s, attempt %d): %s", ev.Step, ev.Tool, ev.CallID, ev.Attempt, cut(ev.Error, 60)))
	case agent.LiveToolNeedsInput:
		var asks []string
		for _, r := range ev.Input {
			asks = append(asks, fmt.Sprintf("%s %s", r.Kind, r.ID))
		}
		w.con.line(fmt.Sprintf("  | step %d: tool %s asks for input (%s): %s; it is called again once given",
			ev.Step, ev.Tool, ev.CallID, strings.Join(asks, ", ")))
	case agent.LiveToolFinished:
		what := ev.Error
		if ev.Result != nil {
			what = ev.Result.Content
			if ev.Result.IsError {
				what = "error: " + what
			}
		}
		w.con.line(fmt.Sprintf("  | step %d: tool %s finished (%s): %s", ev.Step, ev.Tool, ev.CallID, cut(what, 60)))
	}
}

// console writes lines, and streamed text, from several goroutines: a
// line that comes while streamed text is open starts on a line of its
// own. What it writes is made printable: no control characters but
// newlines and tabs, so that what a model or a payload says cannot steer
// the terminal.
type console struct {
	mu   sync.Mutex
	w    io.Writer
	open bool   // streamed text is open, without its newline
	key  [2]int // the step and attempt of the open text
}

// line writes s (one or more lines) and a newline.
func (c *console) line(s string) {
	c.write(s + "\n")
}

// write writes s, which ends with a newline, made printable.
func (c *console) write(s string) {
	c.raw(printable(s))
}

// raw writes s, which ends with a newline, as it is: JSON, whose
// encoder escaped what must be.
func (c *console) raw(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeText()
	io.WriteString(c.w, s)
}

// text writes a piece of the model's text for a step's attempt, after a
// label when the text of another attempt was open.
func (c *console) text(step, attempt int, s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.open || c.key != [2]int{step, attempt} {
		c.closeText()
		fmt.Fprintf(c.w, "  | step %d: model: ", step)
		c.open, c.key = true, [2]int{step, attempt}
	}
	io.WriteString(c.w, strings.ReplaceAll(printable(s), "\n", "\n  | "))
}

// endText ends open streamed text with a newline.
func (c *console) endText() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeText()
}

func (c *console) closeText() {
	if c.open {
		io.WriteString(c.w, "\n")
		c.open = false
	}
}

// printable replaces control characters but newlines and tabs by spaces.
func printable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return ' '
		}
		return r
	}, s)
}
