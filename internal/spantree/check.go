package spantree

import (
	"fmt"
	"regexp"
	"strings"
)

// stepOf finds a step and attempt in a line Write wrote.
var stepOf = regexp.MustCompile(`\[(?:.*, )?step (\d+)(?:, (?:history \d+, )?attempt (\d+))?`)

// CheckOnce checks a tree that Write wrote, as a program printed it, for
// what a run's trace must never have: a step or attempt (or a span that is
// no step) shown twice, or other than one invoke_agent span. It is for the
// tests of programs that print their traces.
func CheckOnce(tree string) error {
	var problems []string
	seen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(tree), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return fmt.Errorf("trace line %q is not offset, duration and span", line)
		}
		key := fields[2] // the span's name, for spans that are not steps
		if m := stepOf.FindStringSubmatch(line); m != nil {
			key = "step " + m[1] + " attempt " + m[2]
		}
		if prev, ok := seen[key]; ok {
			problems = append(problems, fmt.Sprintf("%s twice in the trace:\n%s\n%s", key, prev, line))
		}
		seen[key] = line
	}
	if n := strings.Count(tree, "invoke_agent"); n != 1 {
		problems = append(problems, fmt.Sprintf("%d invoke_agent spans, want 1", n))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}
