package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/memory"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
)

func TestRun(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testRun(t, memory.New()) })
	t.Run("redis", func(t *testing.T) {
		store, err := redis.Open(redistest.Start(t).URL())
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		testRun(t, store)
	})
}

func testRun(t *testing.T, store durable.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, store, 10*time.Millisecond); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	rest := got
	for _, step := range []string{
		"[activity] TakeOrder margherita -> order-pizza-1-0-1",
		"[activity] PreparePizza order-pizza-1-0-1",
		"[activity] DeliverPizza order-pizza-1-0-1",
		"[activity] SendReceipt order-pizza-1-0-1",
		"Run pizza-1 completed: order-pizza-1-0-1 delivered, receipt sent",
		"Workflow History",
		"timer_fired",
		"run_completed",
	} {
		i := strings.Index(rest, step)
		if i < 0 {
			t.Fatalf("output lacks %q after what came before:\n%s", step, got)
		}
		rest = rest[i+len(step):]
	}
	if n := strings.Count(got, "[activity]"); n != 4 {
		t.Errorf("%d activity lines, want 4:\n%s", n, got)
	}
}
