package storetest

import (
	"errors"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Leases: who may write a run, and reclaiming the runs of dead workers.

func testLeaseAcquire(e *env) {
	e.create("r1")
	l := e.lease("r1", "w1", 10*time.Second)
	if l.RunID != "r1" || l.Worker != "w1" || l.Token <= 0 {
		e.t.Errorf("Lease = %+v; want run r1, worker w1, a positive token", l)
	}
	if want := e.clock.Now().Add(10 * time.Second); !l.Expires.Equal(want) {
		e.t.Errorf("Lease expires %v; want %v", l.Expires, want)
	}
}

func testLeaseExtend(e *env) {
	e.create("r1")
	l1 := e.lease("r1", "w1", 10*time.Second)
	e.clock.Advance(5 * time.Second)
	l2 := e.lease("r1", "w1", 10*time.Second)
	if l2.Token != l1.Token {
		e.t.Errorf("extended lease has token %d; want %d", l2.Token, l1.Token)
	}
	if want := e.clock.Now().Add(10 * time.Second); !l2.Expires.Equal(want) {
		e.t.Errorf("extended lease expires %v; want %v", l2.Expires, want)
	}
	e.clock.Advance(6 * time.Second) // past the first expiry, not the second
	if _, err := e.s.Lease(e.ctx(), "r1", "w2", 10*time.Second); !errors.Is(err, backend.ErrLeaseHeld) {
		e.t.Errorf("Lease by w2 of an extended lease: %v; want ErrLeaseHeld", err)
	}
	e.commit(step(l1, 1, "r1/2"))
	if l1.Pending != 0 {
		e.t.Errorf("lease of a run with an empty inbox has Pending %d", l1.Pending)
	}
	e.send("r1", "m1")
	e.send("r1", "m2")
	if l3 := e.lease("r1", "w1", 10*time.Second); l3.Pending != 2 {
		e.t.Errorf("extended lease has Pending %d; want 2 inbox entries", l3.Pending)
	}
}

func testLeaseHeld(e *env) {
	e.create("r1")
	e.lease("r1", "w1", 10*time.Second)
	e.clock.Advance(9 * time.Second)
	if _, err := e.s.Lease(e.ctx(), "r1", "w2", 10*time.Second); !errors.Is(err, backend.ErrLeaseHeld) {
		e.t.Errorf("Lease by w2 of w1's lease: %v; want ErrLeaseHeld", err)
	}
}

func testLeaseExpired(e *env) {
	e.create("r1")
	l1 := e.lease("r1", "w1", 10*time.Second)
	e.clock.Advance(10 * time.Second)
	l2 := e.lease("r1", "w2", 10*time.Second)
	if l2.Token <= l1.Token {
		e.t.Errorf("token after expiry = %d; want more than %d", l2.Token, l1.Token)
	}
	e.clock.Advance(11 * time.Second)
	l3 := e.lease("r1", "w2", 10*time.Second)
	if l3.Token <= l2.Token {
		e.t.Errorf("token of an expired lease taken again by its holder = %d; want more than %d", l3.Token, l2.Token)
	}
}

// testLeaseReclaim checks that the run of a worker that died holding its
// lease is queued once the lease expires.
func testLeaseReclaim(e *env) {
	e.create("r1")
	e.drain()
	e.lease("r1", "w1", 10*time.Second)
	e.noTask("while the lease is held")
	e.clock.Advance(9 * time.Second)
	e.noTask("before the lease expires")
	e.clock.Advance(2 * time.Second)
	e.expectTask("r1")
	if l := e.lease("r1", "w2", 10*time.Second); l.Worker != "w2" {
		e.t.Errorf("Lease after reclaim = %+v; want worker w2", l)
	}
}

func testLeaseReleased(e *env) {
	e.create("r1")
	e.drain()
	c := step(e.lease("r1", "w1", 10*time.Second), 1)
	c.Release = true
	e.commit(c)
	e.clock.Advance(11 * time.Second)
	e.noTask("after a released lease's expiry time")
}
