package main

// The worker process: this program run again by the parent, with the
// environment below, until the parent kills it or closes its stdin.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/openai"
)

// The environment of a worker process.
const (
	envWorker   = "CAIRN_CRASH_WORKER"   // set: the process is a worker; its value names it
	envRedis    = "CAIRN_CRASH_REDIS"    // the Redis URL
	envLease    = "CAIRN_CRASH_LEASE"    // the lease TTL, a Go duration
	envServices = "CAIRN_CRASH_SERVICES" // the key prefix of the services' records
	envModel    = "CAIRN_CRASH_MODEL"    // "scripted" or "openai:<model name>"
	envStallIn  = "CAIRN_CRASH_STALL_IN" // a tool that stalls after its change (see toolEnv)
)

// readyMarker tells the parent that the worker runs.
const readyMarker = "@ready"

// isWorker reports whether this process is a worker started by the parent.
func isWorker() bool { return os.Getenv(envWorker) != "" }

// runWorker runs the worker process: it reports progress on out, one line
// at a time, and runs agent runs until stdin is closed (the parent is done,
// or died) or the process is killed.
func runWorker(out io.Writer) error {
	lease, err := time.ParseDuration(os.Getenv(envLease))
	if err != nil {
		return fmt.Errorf("%s: %w", envLease, err)
	}
	// This worker's spans, metrics and logs, exported as the OTEL_*
	// variables it inherited say. Shut down when the worker stops, so
	// that they are sent; when it is killed they are lost (see setupOTel).
	otel, err := setupOTel(context.Background())
	if err != nil {
		return err
	}
	defer shutdownOTel(otel, "crash worker "+os.Getenv(envWorker))
	local := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
	logger := slog.New(slog.NewMultiHandler(local, otel.LogHandler())).With("worker", os.Getenv(envWorker))
	// The store's visibility timeout is the lease TTL: a task that a
	// killed worker had taken comes back after the same time as its runs.
	store, err := redis.Open(os.Getenv(envRedis), redis.WithVisibilityTimeout(lease), redis.WithLogger(logger))
	if err != nil {
		return err
	}
	defer store.Close()

	var mu sync.Mutex
	say := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(out, line)
	}
	model, err := newModel(os.Getenv(envModel))
	if err != nil {
		return err
	}
	env := &toolEnv{svc: &services{rdb: store.Client(), prefix: os.Getenv(envServices)}, say: say,
		stallIn: os.Getenv(envStallIn)}
	rt := agent.NewRuntime(store, agent.Options{Logger: logger,
		TracerProvider: otel.TracerProvider, MeterProvider: otel.MeterProvider})
	if err := rt.Register(newTripAgent(narratedModel{Model: model, say: say}, env)); err != nil {
		return err
	}
	// A short lease: a worker renews the leases of its runs every third
	// of it, and when it dies they expire and another worker takes the
	// runs over. Production would use seconds to tens of seconds.
	w := rt.NewWorker(durable.WorkerOptions{LeaseTTL: lease})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	say(readyMarker)
	err = w.Run(ctx)
	// Live events are written in the background: write the last ones
	// before the store closes, so that none is lost.
	flushCtx, stopFlush := context.WithTimeout(context.Background(), 5*time.Second)
	defer stopFlush()
	return errors.Join(err, rt.Flush(flushCtx))
}

// newModel returns the model named by spec: "scripted" (or empty), or
// "openai:<model>" for any OpenAI-compatible endpoint configured by
// OPENAI_API_KEY and OPENAI_BASE_URL.
func newModel(spec string) (providers.Model, error) {
	if name, ok := strings.CutPrefix(spec, "openai:"); ok {
		return openai.New(name)
	}
	return tripModel(), nil
}
