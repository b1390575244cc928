package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/benchflow"
)

// steps is the benchmark's workflow: n no-op steps one after the other.
var steps = benchflow.Steps

// sleeper waits on a durable timer for d.
var sleeper = durable.NewWorkflow("sleeper", func(ctx durable.Context, d time.Duration) (struct{}, error) {
	return struct{}{}, durable.Sleep(ctx, d)
})

// The worker process's protocol, on its standard input and output: it
// prints readyLine when its worker runs; it answers each cpuLine it reads
// with "cpu <nanoseconds>", the CPU time it has used; it stops when its
// standard input ends.
const (
	readyLine = "ready"
	cpuLine   = "cpu"
)

// serveWorker is the worker process (cairnbench -worker): a
// durable.Worker of steps and sleeper on the store at url with prefix,
// until its standard input ends. If cpuProfile is set, it writes a CPU
// profile of its whole life there.
func serveWorker(url, prefix string, maxRuns int, cpuProfile string) error {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	quiet := slog.New(slog.DiscardHandler)
	store, err := redis.Open(url, redis.WithPrefix(prefix), redis.WithLogger(quiet))
	if err != nil {
		return err
	}
	defer store.Close()
	w := durable.NewWorker(store, durable.WorkerOptions{Logger: quiet, MaxRuns: maxRuns})
	w.Register(steps, sleeper)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()

	lines := make(chan string)
	go func() {
		defer close(lines)
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			lines <- in.Text()
		}
	}()
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, readyLine)
	if err := out.Flush(); err != nil {
		return err
	}
	for {
		select {
		case err := <-ran:
			return fmt.Errorf("worker stopped: %w", err)
		case line, ok := <-lines:
			if !ok {
				cancel()
				if err := <-ran; err != nil && !errors.Is(err, context.Canceled) {
					return err
				}
				return nil
			}
			if line != cpuLine {
				return fmt.Errorf("unknown request %q", line)
			}
			cpu, err := cpuTime()
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s %d\n", cpuLine, cpu.Nanoseconds())
			if err := out.Flush(); err != nil {
				return err
			}
		}
	}
}

// workerProc is a worker process, as the parent sees it.
type workerProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startWorker starts this program again as a worker process on the store
// at url with prefix, and waits until its worker runs. If cpuProfile is
// set, the worker writes a CPU profile there.
func startWorker(url, prefix string, maxRuns int, cpuProfile string) (*workerProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-worker", "-redis", url, "-prefix", prefix, "-max-runs", strconv.Itoa(maxRuns),
		"-cpuprofile", cpuProfile)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = dieWithParent()
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker process: %w", err)
	}
	w := &workerProc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	line, err := w.read()
	if err != nil || line != readyLine {
		w.stop()
		return nil, fmt.Errorf("worker process %d: %q, %v; want %q", cmd.Process.Pid, line, err, readyLine)
	}
	return w, nil
}

// read reads the worker's next line.
func (w *workerProc) read() (string, error) {
	if w.out.Scan() {
		return w.out.Text(), nil
	}
	if err := w.out.Err(); err != nil {
		return "", err
	}
	return "", io.ErrUnexpectedEOF
}

// cpu returns the CPU time the worker process has used, as it counts it.
func (w *workerProc) cpu() (time.Duration, error) {
	if _, err := fmt.Fprintln(w.in, cpuLine); err != nil {
		return 0, fmt.Errorf("worker process %d: %w", w.cmd.Process.Pid, err)
	}
	line, err := w.read()
	if err != nil {
		return 0, fmt.Errorf("worker process %d: %w", w.cmd.Process.Pid, err)
	}
	ns, ok := strings.CutPrefix(line, cpuLine+" ")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("worker process %d: %q; want %q and a number", w.cmd.Process.Pid, line, cpuLine)
	}
	return time.Duration(n), nil
}

// stop ends the worker's standard input and waits for it to exit, or
// kills it after 30 seconds.
func (w *workerProc) stop() {
	w.in.Close()
	done := make(chan struct{})
	go func() { _ = w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-done
	}
}
