package redistest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/redistest"
)

// A test starts its own server, uses it through Client or URL, and can
// kill and restart it; the server is stopped when the test ends.
func ExampleStart() {
	_ = func(t *testing.T) {
		srv := redistest.Start(t, redistest.WithAOF())
		require.NoError(t, srv.Client().Set(t.Context(), "greeting", "hello", 0).Err())
		srv.Kill()
		srv.Restart() // the AOF brings "greeting" back
	}
}
