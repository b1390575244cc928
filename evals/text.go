package evals

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Tally counts a report's cases by status, and their trials.
type Tally struct {
	Cases, Passed, Failed, Flaky, Errors int
	Trials                               int
}

// Tally counts r's cases by status.
func (r *Report) Tally() Tally {
	var t Tally
	for _, c := range r.Cases {
		t.Cases++
		t.Trials += len(c.Trials)
		switch c.Status {
		case StatusPass:
			t.Passed++
		case StatusFail:
			t.Failed++
		case StatusFlaky:
			t.Flaky++
		default:
			t.Errors++
		}
	}
	return t
}

// String reads "4 cases: 1 passed, 1 failed, 1 flaky, 1 error; 9 trials".
func (t Tally) String() string {
	return fmt.Sprintf("%d %s: %d passed, %d failed, %d flaky, %d %s; %d %s", t.Cases, plural(t.Cases, "case", "cases"),
		t.Passed, t.Failed, t.Flaky, t.Errors, plural(t.Errors, "error", "errors"), t.Trials, plural(t.Trials, "trial", "trials"))
}

// WriteText writes r for a terminal: a table with a row per case (its
// status, the trials that passed, each grader's passes over the trials,
// the mean tokens and latency of a trial), a summary line with the
// counts by status (see Tally) and the run's time, then, for each case
// that did not pass, why: the case's error, or each failing trial's
// error, the runner's notes, and failed grades with their explanations
// (a judge's rationale).
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tSTATUS\tPASSED\tGRADES\tTOKENS\tLATENCY")
	for _, c := range r.Cases {
		passed, grades, tokens, latency := "-", "-", "-", "-"
		if n := len(c.Trials); n > 0 {
			passed = fmt.Sprintf("%d/%d", c.passedTrials(), n)
			grades = c.gradeTally()
			tokens = fmt.Sprint(c.meanTokens())
			latency = formatLatency(c.meanLatency())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", oneLine(c.Name), c.Status, passed, grades, tokens, latency)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s; %s in %s\n", r.Agent, r.Tally(), formatLatency(r.Duration))
	for _, c := range r.Cases {
		if c.Status == StatusPass {
			continue
		}
		fmt.Fprintf(w, "\n%s (%s)\n", oneLine(c.Name), c.Status)
		if c.Error != "" {
			fmt.Fprintf(w, "  %s\n", oneLine(c.Error))
		}
		for _, t := range c.Trials {
			if t.Pass {
				continue
			}
			if t.Error != "" {
				fmt.Fprintf(w, "  trial %d: %s\n", t.Trial, oneLine(t.Error))
			}
			for _, n := range t.Notes {
				fmt.Fprintf(w, "  trial %d: note: %s\n", t.Trial, oneLine(n))
			}
			for _, g := range t.Grades {
				if !g.Pass {
					fmt.Fprintf(w, "  trial %d: %s\n", t.Trial, g.describe())
				}
			}
		}
	}
	return nil
}

// describe reads "judge 0.40 (impolite): The answer is curt.".
func (g Grade) describe() string {
	s := fmt.Sprintf("%s %.2f", g.Grader, g.Value)
	if g.Label != "" {
		s += " (" + g.Label + ")"
	}
	if g.Explanation != "" {
		s += ": " + oneLine(g.Explanation)
	}
	return s
}

// passedTrials counts the trials that passed.
func (c *CaseReport) passedTrials() int {
	n := 0
	for _, t := range c.Trials {
		if t.Pass {
			n++
		}
	}
	return n
}

// gradeTally reads "contains 3/3, judge 2/3": each grader, in the order
// first graded, with the trials it passed over those it graded.
func (c *CaseReport) gradeTally() string {
	var names []string
	passed, graded := map[string]int{}, map[string]int{}
	for _, t := range c.Trials {
		for _, g := range t.Grades {
			if graded[g.Grader] == 0 {
				names = append(names, g.Grader)
			}
			graded[g.Grader]++
			if g.Pass {
				passed[g.Grader]++
			}
		}
	}
	if len(names) == 0 {
		return "-"
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d/%d", n, passed[n], graded[n])
	}
	return strings.Join(parts, ", ")
}

func (c *CaseReport) meanTokens() int {
	sum := 0
	for _, t := range c.Trials {
		sum += t.Tokens
	}
	return sum / max(len(c.Trials), 1)
}

func (c *CaseReport) meanLatency() time.Duration {
	var sum time.Duration
	for _, t := range c.Trials {
		sum += t.Latency
	}
	return sum / time.Duration(max(len(c.Trials), 1))
}

// formatLatency rounds d to what a person reads: 812ms, 1.24s, 1m3s.
func formatLatency(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// oneLine keeps a text on one line of a table, and drops the control
// characters a model's text may hold (a terminal would obey escapes).
func oneLine(s string) string {
	s = strings.NewReplacer("\t", " ", "\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
