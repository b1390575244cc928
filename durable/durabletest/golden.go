package durabletest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
)

// CheckReplay replays the history recorded in the file at path (written by
// backend.MarshalHistory, Golden or an export of a real run) against wf's
// current code, and fails the test with the first divergence as an
// expected-versus-actual diff.
func CheckReplay(t testing.TB, wf durable.WorkflowDefinition, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	history, err := backend.UnmarshalHistory(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := durable.ReplayHistory(wf, history); err != nil {
		if nd, ok := err.(*durable.NondeterminismError); ok {
			t.Fatalf("%s does not replay:\n%s", path, nd.Diff())
		}
		t.Fatalf("%s does not replay: %v", path, err)
	}
}

// Golden compares a history with the golden file at path, and rewrites the
// file instead when update is true (pass the value of an -update flag of
// your test). Random seeds and trace ids are left out, so the file is
// stable across runs of an Env, whose clock starts at the same time every
// time.
func Golden(t testing.TB, path string, history []backend.Event, update bool) {
	t.Helper()
	stable := make([]backend.Event, len(history))
	for i, e := range history {
		e.Seed, e.Trace = 0, backend.Trace{}
		stable[i] = e
	}
	got, err := backend.MarshalHistory(stable)
	if err != nil {
		t.Fatal(err)
	}
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("history differs from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
