package otlptest_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cairn-dev/cairn/internal/otlptest"
)

func TestClearEnv(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "from-the-machine")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "k=v")
	t.Setenv("NOT_OTEL", "kept")
	t.Run("cleared", func(t *testing.T) {
		otlptest.ClearEnv(t)
		assert.Empty(t, os.Getenv("OTEL_SERVICE_NAME"))
		assert.Empty(t, os.Getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS"))
		assert.Equal(t, "kept", os.Getenv("NOT_OTEL"))
	})
	assert.Equal(t, "from-the-machine", os.Getenv("OTEL_SERVICE_NAME"), "restored after the test")
}
