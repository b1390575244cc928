package redistest_test

import (
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/redistest"
)

func TestStartKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis restart test: kills and restarts an AOF redis-server, waiting out the client's retries (about 2 s); run without -short")
	}
	ctx := t.Context()
	srv := redistest.Start(t, redistest.WithAOF())
	if !strings.HasPrefix(srv.URL(), "redis://127.0.0.1:") || strings.HasSuffix(srv.Addr(), ":6379") {
		t.Fatalf("URL %q, Addr %q; want a free loopback port", srv.URL(), srv.Addr())
	}
	c := srv.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Kill")
	}
	srv.Restart()
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET after Restart with AOF = %q, %v; want v", got, err)
	}
}

func TestWithoutAOFStartsEmpty(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	c := srv.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after Restart without AOF = %d, %v; want 0", n, err)
	}
}
