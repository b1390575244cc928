package evals

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Match reports whether an argument's value matches m; present says
// whether the argument was given at all (value is then its JSON). Absent
// matches a missing argument only; Any, any present one; Regex, a string
// value that matches it (RE2, anywhere unless anchored); Equal, a value
// equal as JSON (decoded, so key order, spacing and 1 against 1.0 do not
// matter). A Matcher with none of these set matches any present value.
func (m Matcher) Match(value json.RawMessage, present bool) bool {
	ok, _ := m.match(value, present)
	return ok
}

// match is Match, with the error of a regular expression that does not
// compile.
func (m Matcher) match(value json.RawMessage, present bool) (bool, error) {
	switch {
	case m.Absent:
		return !present, nil
	case !present:
		return false, nil
	case m.Any:
		return true, nil
	case m.Regex != "":
		re, err := regexp.Compile(m.Regex)
		if err != nil {
			return false, fmt.Errorf("matcher $regex %q: %w", m.Regex, err)
		}
		var s string
		if json.Unmarshal(value, &s) != nil {
			return false, nil
		}
		return re.MatchString(s), nil
	case m.Equal != nil:
		return jsonEqual(value, m.Equal), nil
	}
	return true, nil
}

// String shows a matcher as it is written in JSON.
func (m Matcher) String() string {
	switch {
	case m.Absent:
		return `{"$absent":true}`
	case m.Any:
		return `{"$any":true}`
	case m.Regex != "":
		b, _ := json.Marshal(map[string]string{"$regex": m.Regex})
		return string(b)
	case m.Equal != nil:
		return compact(m.Equal)
	}
	return `{"$any":true}`
}

// check reports a matcher that cannot match anything sensible: a regular
// expression that does not compile.
func (m Matcher) check() error {
	_, err := m.match(json.RawMessage(`""`), true)
	if m.Regex == "" {
		return nil
	}
	return err
}

// matchArgs reports whether a call's JSON arguments match every matcher.
func matchArgs(matchers map[string]Matcher, arguments string) bool {
	if len(matchers) == 0 {
		return true
	}
	var args map[string]json.RawMessage
	if json.Unmarshal([]byte(arguments), &args) != nil {
		args = nil
	}
	for name, m := range matchers {
		v, present := args[name]
		if !m.Match(v, present) {
			return false
		}
	}
	return true
}

// matches reports whether a call made is the call expected.
func (e ExpectedCall) matches(c Call) bool {
	return e.Tool == c.Tool && matchArgs(e.Args, c.Arguments)
}

func (e ExpectedCall) String() string {
	if len(e.Args) == 0 {
		return e.Tool + "(…)"
	}
	names := make([]string, 0, len(e.Args))
	for k := range e.Args {
		names = append(names, k)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + ": " + e.Args[k].String()
	}
	return e.Tool + "(" + strings.Join(parts, ", ") + ")"
}

func callString(c Call) string { return c.Tool + "(" + clip(c.Arguments) + ")" }

// TrajectoryGrader grades the tool calls a run made against t. The score
// is the share of the expected calls matched: in order (longest common
// subsequence) for Exact and InOrder, in any order (a maximum matching)
// for AnyOrder and Subset. Exact and AnyOrder also count each call made
// that matched nothing against the score (matched / (expected +
// unexpected)). A trajectory passes with a score of 1. The explanation
// lists the calls missing and, where they count, those unexpected. An
// unknown mode or a $regex that does not compile is an error here.
func TrajectoryGrader(t Trajectory) (Grader, error) {
	mode := t.Mode
	if mode == "" {
		mode = TrajectoryInOrder
	}
	switch mode {
	case TrajectoryExact, TrajectoryInOrder, TrajectoryAnyOrder, TrajectorySubset:
	default:
		return nil, fmt.Errorf("trajectory: unknown mode %q (want exact, in_order, any_order or subset)", t.Mode)
	}
	want := slices.Clone(t.Calls)
	for i, c := range want {
		if c.Tool == "" {
			return nil, fmt.Errorf("trajectory: call %d names no tool", i+1)
		}
		for name, m := range c.Args {
			if err := m.check(); err != nil {
				return nil, fmt.Errorf("trajectory: call %d (%s), argument %s: %w", i+1, c.Tool, name, err)
			}
		}
	}
	return Func("trajectory", func(_ context.Context, o *Outcome) (Score, error) {
		var matchedWant, matchedGot []bool
		if mode == TrajectoryExact || mode == TrajectoryInOrder {
			matchedWant, matchedGot = inOrder(want, o.Calls)
		} else {
			matchedWant, matchedGot = anyOrder(want, o.Calls)
		}
		var missing, unexpected []string
		for i, ok := range matchedWant {
			if !ok {
				missing = append(missing, want[i].String())
			}
		}
		for i, ok := range matchedGot {
			if !ok {
				unexpected = append(unexpected, callString(o.Calls[i]))
			}
		}
		matched := len(want) - len(missing)
		strict := mode == TrajectoryExact || mode == TrajectoryAnyOrder
		denominator := len(want)
		if strict {
			denominator += len(unexpected)
		}
		value := 1.0
		if denominator > 0 {
			value = float64(matched) / float64(denominator)
		}
		var why []string
		if len(missing) > 0 {
			why = append(why, "missing: "+strings.Join(missing, ", "))
		}
		if strict && len(unexpected) > 0 {
			why = append(why, "unexpected: "+strings.Join(unexpected, ", "))
		}
		if len(why) > 0 {
			made := make([]string, len(o.Calls))
			for i, c := range o.Calls {
				made[i] = callString(c)
			}
			why = append(why, fmt.Sprintf("calls made (%s): %s", mode, strings.Join(made, ", ")))
		}
		return verdict(value, 1, strings.Join(why, "; ")), nil
	}), nil
}

// inOrder matches the expected calls to the calls made in order, as many
// as possible (a longest common subsequence).
func inOrder(want []ExpectedCall, got []Call) (matchedWant, matchedGot []bool) {
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i].matches(got[j]) {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	matchedWant, matchedGot = make([]bool, n), make([]bool, m)
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case want[i].matches(got[j]) && lcs[i][j] == lcs[i+1][j+1]+1:
			matchedWant[i], matchedGot[j] = true, true
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			i++
		default:
			j++
		}
	}
	return matchedWant, matchedGot
}

// anyOrder matches the expected calls to the calls made in any order, as
// many as possible (a maximum bipartite matching by augmenting paths).
func anyOrder(want []ExpectedCall, got []Call) (matchedWant, matchedGot []bool) {
	owner := make([]int, len(got)) // the expected call a call made is matched to, or -1
	for j := range owner {
		owner[j] = -1
	}
	var try func(i int, seen []bool) bool
	try = func(i int, seen []bool) bool {
		for j := range got {
			if seen[j] || !want[i].matches(got[j]) {
				continue
			}
			seen[j] = true
			if owner[j] < 0 || try(owner[j], seen) {
				owner[j] = i
				return true
			}
		}
		return false
	}
	matchedWant, matchedGot = make([]bool, len(want)), make([]bool, len(got))
	for i := range want {
		try(i, make([]bool, len(got)))
	}
	for j, i := range owner {
		if i >= 0 {
			matchedWant[i], matchedGot[j] = true, true
		}
	}
	return matchedWant, matchedGot
}
