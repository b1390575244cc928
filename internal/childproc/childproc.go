// Package childproc runs the test binary again as a child process, for
// tests whose claim is about a process dying: it starts the child, keeps
// the lines it prints, waits for a line, and kills it with SIGKILL. The
// child is the same binary, selected by an environment variable that its
// TestMain (or a test it runs) checks.
package childproc

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// WaitTimeout is how long WaitFor waits for a line.
const WaitTimeout = 20 * time.Second

// Process is a child process of a test.
type Process struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd

	mu    sync.Mutex
	lines []string
	seen  chan struct{} // a line was read
	done  chan struct{} // stdout is closed: the process has exited
}

// Start runs the test binary again with -test.run=run ("^$" runs no test:
// TestMain decides) and the test's environment plus env, and waits until
// it prints the line ready, unless ready is empty. What it writes to
// stderr goes to the test's log, each line after name. The process is
// killed when the test ends, if it still runs.
func Start(t testing.TB, name, run, ready string, env ...string) *Process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+run)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = &logWriter{t: t, prefix: name + ": "}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start %s", name)
	p := &Process{t: t, name: name, cmd: cmd, seen: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.seen <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(p.Kill)
	if ready != "" {
		p.WaitFor(ready)
	}
	return p
}

// WaitFor waits until the process has printed line, and fails the test if
// it exits first or does not print it within WaitTimeout.
func (p *Process) WaitFor(line string) {
	p.t.Helper()
	deadline := time.After(WaitTimeout)
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if l == line {
				p.mu.Unlock()
				return
			}
		}
		p.mu.Unlock()
		select {
		case <-p.seen:
		case <-p.done:
			p.t.Fatalf("%s exited before printing %q; it printed %q", p.name, line, p.Output())
		case <-deadline:
			p.t.Fatalf("%s did not print %q; it printed %q", p.name, line, p.Output())
		}
	}
}

// Pid returns the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Name returns the name the process was started with.
func (p *Process) Name() string { return p.name }

// Output returns the lines the process has printed so far.
func (p *Process) Output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Kill sends SIGKILL and reaps the process; killing one that has exited
// does nothing.
func (p *Process) Kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	<-p.done
}

// Signal sends sig to the process (SIGSTOP, SIGCONT, ...).
func (p *Process) Signal(sig syscall.Signal) {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig), "signal %s to %s", sig, p.name)
}

// logWriter writes a child's stderr to the test's log, a line at a time.
type logWriter struct {
	t      testing.TB
	prefix string
}

func (l *logWriter) Write(b []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		l.t.Log(l.prefix + line)
	}
	return len(b), nil
}
