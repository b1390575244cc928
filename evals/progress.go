package evals

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// progress tells a writer of the cases done: a bar rewritten in place on
// a terminal, a line per case elsewhere. It is safe for concurrent use; a
// nil writer is told nothing.
type progress struct {
	w        io.Writer
	terminal bool
	total    int

	mu     sync.Mutex
	ended  int
	counts map[Status]int
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, terminal: w != nil && isTerminal(w), total: total, counts: map[Status]int{}}
}

func (p *progress) done(c CaseReport) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ended++
	p.counts[c.Status]++
	if !p.terminal {
		fmt.Fprintf(p.w, "[%d/%d] %s: %s (pass rate %.0f%%)\n", p.ended, p.total, c.Name, c.Status, 100*c.PassRate)
		return
	}
	const width = 30
	filled := width * p.ended / max(1, p.total)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d  pass %d  fail %d  flaky %d  error %d\x1b[K",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), p.ended, p.total,
		p.counts[StatusPass], p.counts[StatusFail], p.counts[StatusFlaky], p.counts[StatusError])
}

func (p *progress) finish() {
	if p.w != nil && p.terminal && p.ended > 0 {
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a terminal, where progress is rewritten
// in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
