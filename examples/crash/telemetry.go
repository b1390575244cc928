package main

// Every process of the example, the parent and each worker, exports its
// own traces, metrics and logs when the OTEL_* variables ask for it.

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cairn-dev/cairn/agent/otelsetup"
)

// serviceName is the service.name of the example's processes, unless
// OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) names another. The
// workers inherit the parent's environment, so they report as the same
// service.
const serviceName = "cairn-example-crash"

// setupOTel builds this process's providers from the OTEL_* variables
// (agent/otelsetup): with OTEL_EXPORTER_OTLP_ENDPOINT set, spans, metrics
// and logs are exported over OTLP; without, nothing leaves the process.
// Call shutdownOTel on a clean exit. A worker killed with SIGKILL never
// does: what its batching exporters still held dies with it.
func setupOTel(ctx context.Context) (*otelsetup.Providers, error) {
	p, err := otelsetup.FromEnv(ctx, otelsetup.Options{ServiceName: serviceName})
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return p, nil
}

// shutdownOTel exports what p still holds and shuts it down, within 3s (a
// worker asked to stop is killed after 5s), and reports a failure on
// stderr: a collector that is down must not fail the example.
func shutdownOTel(p *otelsetup.Providers, who string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: exporting telemetry: %v\n", who, err)
	}
}
