package evals_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/evals"
)

// The JUnit XML as a CI system reads it.
type junitSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Suites   []struct {
		Name      string `xml:"name,attr"`
		Tests     int    `xml:"tests,attr"`
		Timestamp string `xml:"timestamp,attr"`
		Cases     []struct {
			Classname  string `xml:"classname,attr"`
			Name       string `xml:"name,attr"`
			Time       string `xml:"time,attr"`
			Properties []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestWriteJUnit(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, sampleReport().WriteJUnit(&buf))
	checkGolden(t, "report.junit.xml", buf.Bytes())

	var doc junitSuites
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	dec.Strict = true
	require.NoError(t, dec.Decode(&doc), "the JUnit XML does not parse:\n%s", buf.String())
	assert.Equal(t, 8, doc.Tests, "a testcase per trial, and one for the case that did not run")
	assert.Equal(t, 1, doc.Failures, "refund twice, trial 1")
	assert.Equal(t, 2, doc.Errors, "refund twice, trial 2; judge down")
	require.Len(t, doc.Suites, 1)
	s := doc.Suites[0]
	assert.Equal(t, "support", s.Name)
	assert.Equal(t, "2026-12-04T09:30:00", s.Timestamp)

	names := []string{}
	props := map[string]map[string]string{}
	for _, tc := range s.Cases {
		assert.Equal(t, "support", tc.Classname, tc.Name)
		names = append(names, tc.Name)
		props[tc.Name] = map[string]string{}
		for _, p := range tc.Properties {
			props[tc.Name][p.Name] = p.Value
		}
	}
	assert.Equal(t, []string{"refund cold pizza [trial 1]", "refund cold pizza [trial 2]", "opening hours [trial 1]",
		"opening hours [trial 2]", "opening hours [trial 3]", "refund twice [trial 1]", "refund twice [trial 2]", "judge down"}, names)

	flaky := s.Cases[3]
	assert.Nil(t, flaky.Failure, "a flaky case's failed trial passes")
	assert.Nil(t, flaky.Error, "a flaky case's failed trial passes")
	assert.Equal(t, "true", props["opening hours [trial 2]"]["flaky"])
	assert.Equal(t, "The answer is curt:\nno greeting.", props["opening hours [trial 2]"]["grade.judge.explanation"], "the judge's rationale")
	assert.Contains(t, flaky.SystemOut, "judge: score 0.40 (curt): The answer is curt:\nno greeting.")
	assert.NotContains(t, props["refund cold pizza [trial 1]"], "flaky")

	assert.Equal(t, "lookup_order {\"order_id\":\"A-1001\"}", props["refund cold pizza [trial 1]"]["call.1"])
	assert.Contains(t, s.Cases[0].SystemOut, "Call 2 call_2_0: refund {\"order_id\":\"A-1001\",\"amount\":120}\nresult: refunded 120 euros")
	assert.Equal(t, "eval-refund-1", props["refund cold pizza [trial 1]"]["run_id"])
	assert.Equal(t, "1.200", s.Cases[0].Time)

	failed := s.Cases[5]
	require.NotNil(t, failed.Failure)
	assert.Equal(t, "failed: trajectory", failed.Failure.Message)
	assert.Equal(t, "trajectory: score 0.50 (fail): call 2: want refund, got lookup_order\n", failed.Failure.Text)
	assert.Contains(t, failed.SystemOut, `<script>alert("x")</script> & ]]> <!-- --> {{.}}[31m`, "the answer, as text, less control characters")
	require.NotNil(t, s.Cases[6].Error)
	assert.Equal(t, "model: 429 Too Many Requests", s.Cases[6].Error.Message)
	require.NotNil(t, s.Cases[7].Error)
	assert.Equal(t, "judge: no answer after 3 tries", s.Cases[7].Error.Message)
	assert.False(t, strings.Contains(buf.String(), "\x1b"), "a control character in the XML")
}

func TestWriteJUnitErrorWithTrials(t *testing.T) {
	r := sampleReport()
	r.Cases = []evals.CaseReport{{Name: "judged", Status: evals.StatusError, Error: "judge: no answer",
		Trials: []evals.TrialReport{{Trial: 1, RunID: "r1", Pass: false, Text: "Hi."}}}}
	var buf bytes.Buffer
	require.NoError(t, r.WriteJUnit(&buf))
	var doc junitSuites
	require.NoError(t, xml.Unmarshal(buf.Bytes(), &doc), buf.String())
	require.Len(t, doc.Suites[0].Cases, 2)
	trial, c := doc.Suites[0].Cases[0], doc.Suites[0].Cases[1]
	assert.Equal(t, "judged [trial 1]", trial.Name)
	require.NotNil(t, trial.Failure)
	assert.Equal(t, "failed", trial.Failure.Message)
	assert.Equal(t, "judged", c.Name)
	require.NotNil(t, c.Error)
	assert.Equal(t, "judge: no answer", c.Error.Message)
	assert.Equal(t, 1, doc.Failures)
	assert.Equal(t, 1, doc.Errors)
}
