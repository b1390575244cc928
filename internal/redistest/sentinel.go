package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// StartSentinel starts a Redis Sentinel (redis-server in sentinel mode) on
// a free port of 127.0.0.1 in a new temporary directory, monitoring master
// under the name masterName with a quorum of 1, and stops it when the test
// ends. It returns when the Sentinel answers PING; it names the master
// from then on (SENTINEL GET-MASTER-ADDR-BY-NAME). Its Addr is the
// Sentinel's; it speaks no TLS.
func StartSentinel(t testing.TB, master *Server, masterName string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server is not on PATH (install it, e.g. apt-get install redis-server; .ci/run does): %v", err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.stop)
	conf := filepath.Join(s.dir, "sentinel.conf")
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		s.port = port
		// Sentinel rewrites its configuration file: it must be writable.
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\nsentinel monitor %s 127.0.0.1 %d 1\n",
			port, s.dir, filepath.Join(s.dir, "redis.log"), masterName, master.port)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.args = []string{conf, "--sentinel"}
		err = s.start()
		if err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatalf("redistest: %v", err)
		}
	}
}
