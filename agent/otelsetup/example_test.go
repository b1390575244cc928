package otelsetup_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/agent/otelsetup"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
)

// A program's traces, metrics and logs, set up from the OTEL_* variables
// in one call and given to the runtime. With OTEL_EXPORTER_OTLP_ENDPOINT
// set they are exported over OTLP; without, they stay in the process.
func Example() {
	ctx := context.Background()
	otel, err := otelsetup.FromEnv(ctx, otelsetup.Options{ServiceName: "support"}) // unless OTEL_SERVICE_NAME says otherwise
	if err != nil {
		log.Fatal(err)
	}
	// Last, once the workers have stopped: it sends what is buffered.
	defer func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := otel.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()

	// Logs go to stderr as usual, and to the OTLP logs endpoint with the
	// trace and run they belong to.
	logger := slog.New(slog.NewMultiHandler(slog.NewTextHandler(os.Stderr, nil), otel.LogHandler()))
	rt := agent.NewRuntime(inmem.New(), agent.Options{
		TracerProvider: otel.TracerProvider,
		MeterProvider:  otel.MeterProvider,
		Logger:         logger,
	})
	support := &agent.Agent{Name: "support", Model: scripted.New(
		providers.Response{Message: providers.Message{Content: "Hello! How can I help?"}})}
	if err := rt.Register(support); err != nil {
		log.Fatal(err)
	}
	workerCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = rt.NewWorker(durable.WorkerOptions{Logger: logger}).Run(workerCtx)
	}()

	// The program's own spans: the run hangs under this one.
	reqCtx, span := otel.TracerProvider.Tracer("support").Start(ctx, "POST /tickets")
	run, err := rt.Start(reqCtx, support, "ticket-1", agent.Input{Message: "Hi"})
	span.End()
	if err != nil {
		log.Fatal(err)
	}
	res, err := run.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	stop()
	<-stopped
	fmt.Println(res.Text)
	// Output:
	// Hello! How can I help?
}
