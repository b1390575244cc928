// Package redistest starts real redis-server processes for tests: each on
// a free loopback port, in its own temporary directory, so that a test can
// kill it and start it again without touching any other server (and never
// the machine's shared one on 6379). StartCluster starts a Redis Cluster
// of such servers, StartSentinel a Redis Sentinel that monitors one.
// WithTLS and WithClientCerts make a server speak TLS with certificates of
// a throwaway authority made for the test (Certs). ForBench gives a
// benchmark its server: a private one, or the one that the environment
// variable CAIRN_BENCH_REDIS_URL names (BenchURLEnv), under a key prefix
// of its own.
//
// redis-server must be on PATH; a test that calls Start fails, with a
// message saying so, when it is not. CI installs it (see .ci/run).
package redistest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// startTimeout bounds how long Start and Restart wait for the server to
// answer PING.
const startTimeout = 10 * time.Second

// Server is a redis-server process started by Start. Its methods are safe
// for concurrent use.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	bus  int // the cluster bus port, in cluster mode
	args []string
	// certs and tlsConfig are the server's TLS files and its clients'
	// configuration; nil without TLS.
	certs     *Certs
	tlsConfig *tls.Config

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	client *goredis.Client
}

// Option configures a Server.
type Option func(*config)

type config struct {
	aof     bool
	cluster bool   // cluster mode, with a cluster bus port of its own
	tls     string // tls-auth-clients: "no" or "yes"; "" without TLS
	certs   *Certs // the TLS files; made by Start if nil
	args    []string
}

// WithAOF turns on the append-only file with "appendfsync always": every
// write is on disk before the server answers it, so a server killed with
// SIGKILL and restarted (Server.Kill, Server.Restart) loses nothing that it
// acknowledged.
func WithAOF() Option {
	return func(c *config) { c.aof = true }
}

// WithArgs adds command-line arguments, e.g. "--cluster-enabled", "yes".
// They come after the harness's own, so they can override them.
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Start starts a redis-server on a free port of 127.0.0.1 in a new
// temporary directory, waits until it answers PING, and stops it when the
// test ends. Snapshots are off (--save ""); WithAOF turns on the
// append-only file; WithTLS makes it speak TLS.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server is not on PATH (install it, e.g. apt-get install redis-server; .ci/run does): %v", err)
	}
	var cfg config
	for _, opt := range opts {
		opt(&cfg)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	if cfg.tls != "" {
		if cfg.certs == nil {
			cfg.certs = NewCerts(t)
		}
		s.certs, s.tlsConfig = cfg.certs, cfg.certs.ClientConfig(t, true)
	}
	t.Cleanup(s.stop)
	// Another process may take the free port between our probe and the
	// server's bind: try a few ports.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		s.port = port
		s.args = serverArgs(s.dir, port, cfg)
		if cfg.cluster {
			bus, err := freePort()
			if err != nil {
				t.Fatalf("redistest: find a free port: %v", err)
			}
			s.args = append(s.args, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
				"--cluster-config-file", "nodes.conf")
			s.bus = bus
		}
		err = s.start()
		if err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatalf("redistest: %v", err)
		}
	}
}

func serverArgs(dir string, port int, cfg config) []string {
	args := []string{"--port", strconv.Itoa(port)}
	if cfg.tls != "" {
		args = append([]string{"--port", "0", "--tls-port", strconv.Itoa(port)}, tlsArgs(cfg)...)
	}
	args = append(args,
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"),
		"--daemonize", "no",
		"--save", "",
	)
	if cfg.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	return append(args, cfg.args...)
}

// Addr returns the server's address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the URL of the server's database 0, "redis://127.0.0.1:PORT/0",
// or "rediss://127.0.0.1:PORT/0" with TLS.
func (s *Server) URL() string {
	if s.certs != nil {
		return "rediss://" + s.Addr() + "/0"
	}
	return "redis://" + s.Addr() + "/0"
}

// Certs returns the server's TLS files, or nil if it does not speak TLS.
func (s *Server) Certs() *Certs { return s.certs }

// TLSConfig returns the TLS configuration of the server's clients: it
// trusts the server's authority and shows the client certificate. It is
// nil if the server does not speak TLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.tlsConfig == nil {
		return nil
	}
	return s.tlsConfig.Clone()
}

// Dir returns the server's working directory, where its AOF and log live.
func (s *Server) Dir() string { return s.dir }

// Client returns a client of the server, the same one on every call. It is
// closed when the test ends.
func (s *Server) Client() *goredis.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.client = goredis.NewClient(&goredis.Options{Addr: s.Addr(), TLSConfig: s.TLSConfig()})
		s.t.Cleanup(func() { _ = s.client.Close() })
	}
	return s.client
}

// Kill kills the server with SIGKILL and waits until it has exited. Its
// clients see connection errors until Restart.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

// Restart starts the server again on the same port, in the same
// directory, with the same arguments, killing it first if it runs. Data
// survives only with WithAOF.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	s.kill()
	s.mu.Unlock()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// start runs redis-server and waits until it answers PING.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second, TLSConfig: s.TLSConfig()})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited: %s%s", s.port, stderr.String(), s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			s.kill()
			s.mu.Unlock()
			return fmt.Errorf("redis-server on port %d did not answer PING within %v: %v%s", s.port, startTimeout, err, s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill kills the process, if it runs, and waits for it. s.mu must be held.
func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Logf("redistest: kill redis-server: %v", err)
	}
	<-s.exited
	s.cmd = nil
}

// stop kills the server at the end of the test.
func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

// logTail returns the end of the server's log, for error messages.
func (s *Server) logTail() string {
	data, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil || len(data) == 0 {
		return ""
	}
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return "\nredis.log:\n" + string(data)
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
