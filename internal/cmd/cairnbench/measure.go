package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/internal/redistest"
)

// info returns the fields of a section of the server's INFO.
func info(ctx context.Context, rdb *goredis.Client, section string) (map[string]string, error) {
	text, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("INFO %s: %w", section, err)
	}
	fields := map[string]string{}
	for line := range strings.Lines(text) {
		if name, value, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[name] = value
		}
	}
	return fields, nil
}

// serverCPU returns the CPU time that redis-server has used, system and
// user, from its own accounting (INFO cpu).
func serverCPU(ctx context.Context, rdb *goredis.Client) (time.Duration, error) {
	fields, err := info(ctx, rdb, "cpu")
	if err != nil {
		return 0, err
	}
	var total float64
	for _, name := range []string{"used_cpu_sys", "used_cpu_user"} {
		v, err := strconv.ParseFloat(fields[name], 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu: %s %q: %w", name, fields[name], err)
		}
		total += v
	}
	return time.Duration(total * float64(time.Second)), nil
}

// usedMemory returns the server's used_memory (INFO memory), in bytes.
func usedMemory(ctx context.Context, rdb *goredis.Client) (int64, error) {
	fields, err := info(ctx, rdb, "memory")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(fields["used_memory"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("INFO memory: used_memory %q: %w", fields["used_memory"], err)
	}
	return n, nil
}

// roundTrip returns one raw Redis round trip: the median of 2,000 PINGs.
func roundTrip(ctx context.Context, rdb *goredis.Client) (time.Duration, error) {
	times := make([]time.Duration, 2000)
	for i := range times {
		start := time.Now()
		if err := rdb.Ping(ctx).Err(); err != nil {
			return 0, err
		}
		times[i] = time.Since(start)
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// keyBytes is what MEMORY USAGE says of a set of keys.
type keyBytes struct {
	Keys  int
	Bytes int64
	// ByKind sums the keys by the part of their name after the hash tag
	// ("run", "history", ...).
	ByKind map[string]int64
}

// runKeyBytes returns the memory of all the keys of the runs ids under
// prefix: the keys with a run's hash tag, "<prefix>:{r:<id>}:*", found by
// one SCAN of the prefix's run keys.
func runKeyBytes(ctx context.Context, rdb *goredis.Client, prefix string, ids []string) (keyBytes, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	runPrefix := prefix + ":{r:"
	var keys []string
	iter := rdb.Scan(ctx, 0, redistest.GlobEscape(runPrefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		id, _, ok := strings.Cut(strings.TrimPrefix(key, runPrefix), "}:")
		if ok && want[id] {
			keys = append(keys, key)
		}
	}
	if err := iter.Err(); err != nil {
		return keyBytes{}, fmt.Errorf("scan run keys: %w", err)
	}
	return memoryUsage(ctx, rdb, keys)
}

// sharedKeyBytes returns the memory of the keys under prefix that belong
// to no one run: the partitions' task streams, timers and indexes.
func sharedKeyBytes(ctx context.Context, rdb *goredis.Client, prefix string) (keyBytes, error) {
	var keys []string
	iter := rdb.Scan(ctx, 0, redistest.GlobEscape(prefix)+":*", 1000).Iterator()
	for iter.Next(ctx) {
		if key := iter.Val(); !strings.HasPrefix(key, prefix+":{r:") {
			keys = append(keys, key)
		}
	}
	if err := iter.Err(); err != nil {
		return keyBytes{}, fmt.Errorf("scan shared keys: %w", err)
	}
	return memoryUsage(ctx, rdb, keys)
}

// memoryUsage sums MEMORY USAGE (SAMPLES 0: every element counted) of
// keys, pipelined; a key gone meanwhile counts nothing.
func memoryUsage(ctx context.Context, rdb *goredis.Client, keys []string) (keyBytes, error) {
	kb := keyBytes{ByKind: map[string]int64{}}
	for chunk := range slices.Chunk(keys, 500) {
		cmds := make([]*goredis.IntCmd, len(chunk))
		_, err := rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, key := range chunk {
				cmds[i] = p.MemoryUsage(ctx, key, 0)
			}
			return nil
		})
		if err != nil && err != goredis.Nil {
			return keyBytes{}, fmt.Errorf("MEMORY USAGE: %w", err)
		}
		for i, cmd := range cmds {
			n, err := cmd.Result()
			if err == goredis.Nil {
				continue
			}
			if err != nil {
				return keyBytes{}, fmt.Errorf("MEMORY USAGE %s: %w", chunk[i], err)
			}
			kb.Keys++
			kb.Bytes += n
			kb.ByKind[keyKind(chunk[i])] += n
		}
	}
	return kb, nil
}

// keyKind is the part of a key's name after its hash tag, with a
// partition key's own suffix (a status, a workflow name) cut off:
// "history", "tasks", "status", ...
func keyKind(key string) string {
	_, kind, ok := strings.Cut(key, "}:")
	if !ok {
		return key
	}
	kind, _, _ = strings.Cut(kind, ":")
	return kind
}
