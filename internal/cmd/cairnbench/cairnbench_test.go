package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestMain lets the test binary be a worker process: startWorker runs
// os.Executable, which is the test binary here, with -worker.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-worker" {
		os.Exit(cairnbench(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestSharedServer runs two rounds of small measurements on a server
// named by -redis: every measurement is there, and only the keys of the
// benchmark are gone at the end.
func TestSharedServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes and runs a few hundred steps (about 3 s); run without -short")
	}
	ctx := t.Context()
	srv := redistest.Start(t)
	require.NoError(t, srv.Client().Set(ctx, "cairn:{r:other}:run", "kept", 0).Err())
	profiles := filepath.Join(t.TempDir(), "profiles")
	var out, errs bytes.Buffer
	code := cairnbench(ctx, []string{"-redis", srv.URL(), "-runs", "20", "-steps", "3", "-workers", "1,2",
		"-count", "2", "-waiting", "10", "-sample", "5", "-json", "-profile", profiles}, &out, &errs)
	require.Zero(t, code, "exit code; stderr:\n%s", errs.String())

	var rep report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "the JSON report:\n%s", out.String())
	assert.Equal(t, 20, rep.Runs)
	assert.True(t, strings.HasPrefix(rep.Redis, "shared, "), "redis %q", rep.Redis)
	assert.NotEmpty(t, rep.RedisVersion)
	assert.Positive(t, rep.RTTMicros)
	require.Len(t, rep.Throughput, 4, "2 rounds of 1 and 2 worker processes")
	for i, th := range rep.Throughput {
		assert.Equal(t, 1+i/2, th.Round, "measurement %d", i)
		assert.Equal(t, []int{1, 2}[i%2], th.Workers, "measurement %d", i)
		assert.Positive(t, th.StepsPerSec, "measurement %d", i)
		assert.Positive(t, th.WorkerCPU, "measurement %d", i)
		assert.Positive(t, th.RedisCPU, "measurement %d", i)
		assert.Equal(t, 5, th.Bytes.Sampled, "measurement %d", i)
		assert.Positive(t, th.Bytes.RunKeys, "measurement %d", i)
		assert.Contains(t, th.Bytes.ByKey, "history", "measurement %d", i)
		assert.Contains(t, th.Bytes.ByKey, "run", "measurement %d", i)
	}
	assert.InDelta(t, 1, rep.Throughput[0].XFirst, 1e-9)
	require.Len(t, rep.Waiting, 2)
	for _, w := range rep.Waiting {
		assert.Positive(t, w.Bytes.RunKeys)
		assert.Contains(t, w.Bytes.ByKey, "history")
	}

	keys, err := srv.Client().Keys(ctx, "*").Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"cairn:{r:other}:run"}, keys, "keys left on the server")

	for _, name := range []string{"round1-workers1-1", "round1-workers2-1", "round1-workers2-2", "round2-workers1-1", "round2-workers2-2"} {
		info, err := os.Stat(filepath.Join(profiles, name+".prof"))
		if assert.NoError(t, err, "the CPU profile of a worker process") {
			assert.Positive(t, info.Size(), "the CPU profile %s", name)
		}
	}

	var text bytes.Buffer
	require.NoError(t, rep.write(&text))
	for _, want := range []string{"steps/s", "median (min-max) of 2 rounds", "waiting on a timer", "completed"} {
		assert.Contains(t, text.String(), want)
	}
}

// TestPrivateServer: without -redis (and CAIRN_BENCH_REDIS_URL), the
// command starts a server of its own.
func TestPrivateServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and a worker process; run without -short")
	}
	t.Setenv(redistest.BenchURLEnv, "")
	var out, errs bytes.Buffer
	code := cairnbench(t.Context(), []string{"-runs", "5", "-steps", "2", "-workers", "1", "-waiting", "0"}, &out, &errs)
	require.Zero(t, code, "exit code; stderr:\n%s", errs.String())
	assert.Contains(t, out.String(), "(private, 127.0.0.1:")
	assert.NotContains(t, out.String(), ":6379)")
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-workers", "1,x"},
		{"-workers", "0"},
		{"-runs", "0"},
		{"-waiting", "-1"},
		{"-no-such-flag"},
	} {
		var out, errs bytes.Buffer
		assert.Equal(t, 2, cairnbench(t.Context(), args, &out, &errs), "%q", args)
		assert.NotEmpty(t, errs.String(), "%q: no message", args)
	}
}

func TestParseWorkers(t *testing.T) {
	got, err := parseWorkers("1, 2,4")
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 4}, got)
}

func TestKeyKind(t *testing.T) {
	for key, want := range map[string]string{
		"cairn:{r:abc}:history":            "history",
		"cairn:{p:3:42}:status:completed":  "status",
		"cairn:{p:0}:tasks":                "tasks",
		"cairnbench-1a2b:{r:x:y}:run":      "run",
		"not a key of the store, no tag":   "not a key of the store, no tag",
		"cairn:{q:emails}:attempts":        "attempts",
		"cairn:{p:1}:workflow:steps":       "workflow",
		"cairn:{r:id}:feed":                "feed",
		"cairnbench-00000000:{r:01}:inbox": "inbox",
	} {
		assert.Equal(t, want, keyKind(key), key)
	}
}

func TestSpread(t *testing.T) {
	ts := []throughput{{StepsPerSec: 3}, {StepsPerSec: 1}, {StepsPerSec: 2}, {StepsPerSec: 10}}
	assert.Equal(t, "2.5 (1.0-10.0)", spread(ts, "%.1f", func(t throughput) float64 { return t.StepsPerSec }))
	assert.Equal(t, "2 (1-3)", spread(ts[:3], "%.0f", func(t throughput) float64 { return t.StepsPerSec }))
}
