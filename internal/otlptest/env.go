package otlptest

import (
	"os"
	"strings"
	"testing"
)

// ClearEnv empties, for the rest of the test (t.Setenv), every OTEL_*
// variable the machine running the tests has set, so that what the test
// sets is all the OpenTelemetry SDK and the exporters read, in the test's
// process and in the child processes it starts with its environment. Like
// t.Setenv, it may not be used in parallel tests.
func ClearEnv(t testing.TB) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "OTEL_") {
			t.Setenv(name, "")
		}
	}
}
