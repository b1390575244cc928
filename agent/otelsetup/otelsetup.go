// Package otelsetup builds the OpenTelemetry providers of a program that
// runs cairn agents, traces, metrics and logs, from the standard OTEL_*
// environment variables, so that main needs one call:
//
//	otel, err := otelsetup.FromEnv(ctx, otelsetup.Options{ServiceName: "support"})
//	if err != nil {
//		return err
//	}
//	defer otel.Shutdown(context.WithoutCancel(ctx))
//	rt := agent.NewRuntime(store, agent.Options{
//		TracerProvider: otel.TracerProvider,
//		MeterProvider:  otel.MeterProvider,
//		Logger:         slog.New(slog.NewMultiHandler(slog.Default().Handler(), otel.LogHandler())),
//	})
//
// It never sets the global providers (otel.SetTracerProvider and the
// like): the caller may.
//
// The variables it honours, through the SDK and the exporters it builds:
//
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, over
//     Options.ServiceName;
//   - OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER, OTEL_LOGS_EXPORTER:
//     otlp, console or none (prometheus too, for metrics);
//   - OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf,
//     the default, or grpc), OTEL_EXPORTER_OTLP_HEADERS,
//     OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_COMPRESSION, their
//     per-signal forms (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, ...) and
//     OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE;
//   - OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default: parentbased_always_on);
//   - OTEL_BSP_*, OTEL_METRIC_EXPORT_INTERVAL, OTEL_BLRP_* for batching.
//
// One departure from the specification, so that a program run without
// a collector sends nothing anywhere: a signal whose OTEL_*_EXPORTER is
// unset is exported over OTLP only if an endpoint is set for it
// (OTEL_EXPORTER_OTLP_ENDPOINT or the signal's own); otherwise it stays
// in the process. Set OTEL_TRACES_EXPORTER=otlp (and so on) to export to
// the default endpoint, localhost:4318 (4317 with grpc).
package otelsetup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"github.com/cairn-dev/cairn/durable"
)

// Instrumentation is the instrumentation scope of the records that
// LogHandler sends.
const Instrumentation = "github.com/cairn-dev/cairn"

// Options are what the environment does not say.
type Options struct {
	// ServiceName is the resource's service.name unless OTEL_SERVICE_NAME
	// or OTEL_RESOURCE_ATTRIBUTES sets it. Default:
	// unknown_service:<program name>, as the SDK's.
	ServiceName string
	// SpanProcessors are also given every span the TracerProvider ends,
	// besides the exporter's batcher: a sdktrace.NewSimpleSpanProcessor
	// over an in-memory exporter, for one. Shutdown shuts them down.
	SpanProcessors []sdktrace.SpanProcessor
}

// Providers are a program's OpenTelemetry providers. Give them to the
// agent.Runtime (agent.Options) and to the program's own
// instrumentation; call Shutdown once, before the program exits.
type Providers struct {
	// Resource describes the program: service.name, telemetry.sdk.*, and
	// OTEL_RESOURCE_ATTRIBUTES. Every signal carries it.
	Resource *resource.Resource
	// TracerProvider takes the span ids cairn derives
	// (durable.IDGenerator) and samples as OTEL_TRACES_SAMPLER says.
	TracerProvider *sdktrace.TracerProvider
	// MeterProvider reads its instruments periodically
	// (OTEL_METRIC_EXPORT_INTERVAL, default 60 s) and at Shutdown.
	MeterProvider *sdkmetric.MeterProvider
	// LoggerProvider receives log records: those of LogHandler, or of
	// any other bridge.
	LoggerProvider *sdklog.LoggerProvider
}

// FromEnv builds the providers from the OTEL_* environment variables
// (see the package documentation) and opts. It sets no global state.
// An invalid variable (an unknown exporter or protocol, a malformed
// header list) is an error.
func FromEnv(ctx context.Context, opts Options) (*Providers, error) {
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(cmp.Or(opts.ServiceName, "unknown_service:"+filepath.Base(os.Args[0])))),
		resource.WithFromEnv()) // later detectors win: the environment over the default
	if err != nil {
		return nil, fmt.Errorf("otelsetup: resource: %w", err)
	}
	p := &Providers{Resource: res}

	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithIDGenerator(durable.IDGenerator{})}
	for _, sp := range opts.SpanProcessors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sp))
	}
	if exporting("TRACES") {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("otelsetup: span exporter: %w", err)
		}
		if !autoexport.IsNoneSpanExporter(exp) {
			tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
		}
	}
	p.TracerProvider = sdktrace.NewTracerProvider(tpOpts...)

	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	if exporting("METRICS") {
		reader, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("otelsetup: metric reader: %w", err), p.TracerProvider.Shutdown(ctx))
		}
		if !autoexport.IsNoneMetricReader(reader) {
			mpOpts = append(mpOpts, sdkmetric.WithReader(reader))
		}
	}
	p.MeterProvider = sdkmetric.NewMeterProvider(mpOpts...)

	lpOpts := []sdklog.LoggerProviderOption{sdklog.WithResource(res)}
	if exporting("LOGS") {
		exp, err := autoexport.NewLogExporter(ctx)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("otelsetup: log exporter: %w", err),
				p.TracerProvider.Shutdown(ctx), p.MeterProvider.Shutdown(ctx))
		}
		if !autoexport.IsNoneLogExporter(exp) {
			lpOpts = append(lpOpts, sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)))
		}
	}
	p.LoggerProvider = sdklog.NewLoggerProvider(lpOpts...)
	return p, nil
}

// exporting reports whether signal (TRACES, METRICS or LOGS) is to be
// exported: its exporter is named, or an OTLP endpoint is set for it.
func exporting(signal string) bool {
	return os.Getenv("OTEL_"+signal+"_EXPORTER") != "" ||
		os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" ||
		os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

// LogHandler returns a slog.Handler that sends records to the
// LoggerProvider (through the otelslog bridge), as OTel log records with
// the trace and span ids of the span in the context they are logged with
// (slog's ...Context methods). A record logged inside an activity (a
// model or tool call) also gets the run_id, step and attempt of the call
// (durable.ActivityInfoFrom); records of workflow code
// (durable.Logger) carry their run_id and the run's trace already. To
// also write records locally, combine it with another handler:
// slog.New(slog.NewMultiHandler(local, p.LogHandler())).
func (p *Providers) LogHandler() slog.Handler {
	return runHandler{otelslog.NewHandler(Instrumentation, otelslog.WithLoggerProvider(p.LoggerProvider))}
}

// Shutdown exports what is still buffered (spans, a last reading of the
// metrics, log records) and shuts the providers down, returning every
// error. Call it once, after the workers have stopped: a worker emits a
// run's spans and metrics as it writes its history. It waits as long as
// ctx allows: give ctx a deadline, as an exporter whose collector does not
// answer retries for up to a minute.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	if err := p.TracerProvider.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut down tracer provider: %w", err))
	}
	if err := p.MeterProvider.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut down meter provider: %w", err))
	}
	if err := p.LoggerProvider.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut down logger provider: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("otelsetup: %w", err)
	}
	return nil
}
