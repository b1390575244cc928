package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/evals"
)

// TestRun runs the example: each case ends as the dataset means it to,
// the reports are written, and a second run compared with the first finds
// no regression (the flaky case is flaky in both, not a regression).
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs crash trials that wait out leases; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var out bytes.Buffer
	failed, err := run(ctx, &out, dir, "")
	require.NoError(t, err, out.String())
	assert.False(t, failed)

	f, err := os.Open(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	defer f.Close()
	report, err := evals.ReadReport(f)
	require.NoError(t, err)
	status := map[string]evals.Status{}
	for _, c := range report.Cases {
		status[c.Name] = c.Status
	}
	assert.Equal(t, map[string]evals.Status{
		"refund-approved":          evals.StatusPass,
		"refund-rejected":          evals.StatusPass,
		"judged-answer":            evals.StatusPass,
		"flaky-apology":            evals.StatusFlaky,
		"replayed-from-production": evals.StatusPass,
	}, status, out.String())

	junit, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
	require.NoError(t, err)
	var suites struct {
		XMLName xml.Name `xml:"testsuites"`
	}
	require.NoError(t, xml.Unmarshal(junit, &suites))
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	require.NoError(t, err)
	assert.Contains(t, string(html), "flaky-apology")

	out.Reset()
	failed, err = run(ctx, &out, t.TempDir(), filepath.Join(dir, "report.json"))
	require.NoError(t, err, out.String())
	assert.False(t, failed, "a second run has no regression:\n%s", out.String())
}
