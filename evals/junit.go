package evals

import (
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// WriteJUnit writes r as JUnit XML, the format CI systems (Jenkins,
// GitLab, GitHub test reporters) read: one <testsuite> named after the
// agent, and one <testcase> per case and trial, with classname the agent
// and name "case [trial n]"; a case with StatusError (it could not run,
// or not be graded) has one more testcase, named after it, with an
// <error> that says why.
//
// A failed trial has a <failure> whose message names the failed graders
// and whose text gives each grade's explanation; a trial whose run
// failed has an <error> with why. Each testcase has <properties>: the
// run id, the tags, each grade's score, label and explanation (a judge's
// rationale) as grade.NAME.score, grade.NAME.label and
// grade.NAME.explanation, each tool call as call.N, "tool arguments",
// the runner's notes as note.N, and, in a crash trial, the commit its
// worker was stopped before as crash; its <system-out> holds the final
// answer, the tool calls with their results, and the notes.
//
// Flaky cases are written as passing testcases with the property
// flaky=true: their failed trials carry no <failure>, and their failed
// grades are in <system-out>. JUnit has no standard verdict for a test
// that passes and fails across reruns (Maven Surefire's <flakyFailure>
// is an extension most readers ignore), and a <failure> would make every
// CI system fail the build on a case that is flaky, not regressed, which
// is what cairn eval's own exit status and Compare say; the property
// lets a dashboard find and count them.
func (r *Report) WriteJUnit(w io.Writer) error {
	suite := junitSuite{
		Name:      r.Agent,
		Timestamp: formatTimestamp(r.Started),
		Time:      seconds(r.Duration),
	}
	for _, c := range r.Cases {
		for _, t := range c.Trials {
			suite.add(trialCase(r.Agent, &c, &t))
		}
		if len(c.Trials) == 0 || c.Status == StatusError {
			tc := junitCase{Classname: r.Agent, Name: c.Name, Properties: caseProperties(&c)}
			tc.Error = &junitMessage{Message: firstLine(cmp.Or(c.Error, "the case could not run")), Type: "error", Text: xmlText(c.Error)}
			suite.add(tc)
		}
	}
	doc := junitSuites{Name: r.Agent, Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Time: suite.Time, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// trialCase is the testcase of one trial; see WriteJUnit.
func trialCase(agent string, c *CaseReport, t *TrialReport) junitCase {
	tc := junitCase{
		Classname:  agent,
		Name:       fmt.Sprintf("%s [trial %d]", c.Name, t.Trial),
		Time:       seconds(t.Latency),
		Properties: caseProperties(c),
	}
	prop := func(name, value string) {
		tc.Properties = append(tc.Properties, junitProperty{Name: name, Value: xmlText(value)})
	}
	prop("run_id", t.RunID)
	prop("trial", strconv.Itoa(t.Trial))
	prop("tokens", strconv.Itoa(t.Tokens))
	prop("turns", strconv.Itoa(t.Turns))
	var failed []string
	var why strings.Builder
	for _, g := range t.Grades {
		prop("grade."+g.Grader+".score", strconv.FormatFloat(g.Value, 'f', -1, 64))
		prop("grade."+g.Grader+".pass", strconv.FormatBool(g.Pass))
		if g.Label != "" {
			prop("grade."+g.Grader+".label", g.Label)
		}
		if g.Explanation != "" {
			prop("grade."+g.Grader+".explanation", g.Explanation)
		}
		if !g.Pass {
			failed = append(failed, g.Grader)
			fmt.Fprintf(&why, "%s: score %.2f", g.Grader, g.Value)
			if g.Label != "" {
				fmt.Fprintf(&why, " (%s)", g.Label)
			}
			if g.Explanation != "" {
				fmt.Fprintf(&why, ": %s", g.Explanation)
			}
			why.WriteString("\n")
		}
	}
	for i, call := range t.Calls {
		prop(fmt.Sprintf("call.%d", i+1), call.Tool+" "+call.Arguments)
	}
	if t.Crash > 0 {
		prop("crash", strconv.Itoa(t.Crash))
	}
	for i, n := range t.Notes {
		prop(fmt.Sprintf("note.%d", i+1), n)
	}

	var out strings.Builder
	fmt.Fprintf(&out, "Answer:\n%s\n", t.Text)
	for i, call := range t.Calls {
		status := "result"
		if call.IsError {
			status = "error"
		}
		fmt.Fprintf(&out, "\nCall %d %s: %s %s\n%s: %s\n", i+1, call.ID, call.Tool, call.Arguments, status, call.Result)
	}
	for _, n := range t.Notes {
		fmt.Fprintf(&out, "\nNote: %s\n", n)
	}

	flaky := c.Status == StatusFlaky
	switch {
	case t.Pass:
	case flaky:
		out.WriteString("\nThis trial failed; the case is flaky, so it is not reported as a failure.\n")
		if t.Error != "" {
			fmt.Fprintf(&out, "error: %s\n", t.Error)
		}
		out.WriteString(why.String())
	case t.Error != "":
		tc.Error = &junitMessage{Message: firstLine(t.Error), Type: "error", Text: xmlText(t.Error)}
	default:
		msg := "failed"
		if len(failed) > 0 {
			msg += ": " + strings.Join(failed, ", ")
		}
		tc.Failure = &junitMessage{Message: msg, Type: "grade", Text: xmlText(why.String())}
	}
	tc.SystemOut = &junitText{xmlText(out.String())}
	return tc
}

// caseProperties are the properties of every testcase of a case.
func caseProperties(c *CaseReport) []junitProperty {
	props := []junitProperty{{Name: "status", Value: string(c.Status)},
		{Name: "pass_rate", Value: strconv.FormatFloat(c.PassRate, 'f', -1, 64)}}
	if c.Status == StatusFlaky {
		props = append(props, junitProperty{Name: "flaky", Value: "true"})
	}
	if len(c.Tags) > 0 {
		props = append(props, junitProperty{Name: "tags", Value: xmlText(strings.Join(c.Tags, ","))})
	}
	return props
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

func (s *junitSuite) add(tc junitCase) {
	s.Tests++
	if tc.Failure != nil {
		s.Failures++
	}
	if tc.Error != nil {
		s.Errors++
	}
	s.Cases = append(s.Cases, tc)
}

type junitCase struct {
	Classname  string          `xml:"classname,attr"`
	Name       string          `xml:"name,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Failure    *junitMessage   `xml:"failure,omitempty"`
	Error      *junitMessage   `xml:"error,omitempty"`
	SystemOut  *junitText      `xml:"system-out,omitempty"`
}

// junitText is text written as CDATA, so that it reads as written.
type junitText struct {
	Text string `xml:",cdata"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

// seconds writes d as JUnit times are: seconds, to the millisecond.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

func formatTimestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return xmlText(line)
}

// xmlText drops what XML 1.0 cannot hold (control characters other than
// tab, newline and carriage return; invalid UTF-8), which encoding/xml
// would otherwise write as U+FFFD or refuse.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r == 0xFFFD:
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}
