package storetest

import (
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/cairn-dev/cairn/durable/backend"
)

// Leases: who may write a run, and reclaiming the runs of dead workers.

func testLeaseAcquire(e *env) {
	e.create("r1")
	l := e.lease("r1", "w1", 10*time.Second)
	assert.Equal(e.t, "r1", l.RunID, "Lease run")
	assert.Equal(e.t, "w1", l.Worker, "Lease worker")
	assert.Positive(e.t, l.Token, "Lease token")
	want := e.clock.Now().Add(10 * time.Second)
	assert.True(e.t, l.Expires.Equal(want), "Lease expires %v; want %v", l.Expires, want)
}

func testLeaseExtend(e *env) {
	e.create("r1")
	l1 := e.lease("r1", "w1", 10*time.Second)
	e.clock.Advance(5 * time.Second)
	l2 := e.lease("r1", "w1", 10*time.Second)
	assert.Equal(e.t, l1.Token, l2.Token, "extended lease token")
	want := e.clock.Now().Add(10 * time.Second)
	assert.True(e.t, l2.Expires.Equal(want), "extended lease expires %v; want %v", l2.Expires, want)
	e.clock.Advance(6 * time.Second) // past the first expiry, not the second
	_, err := e.s.Lease(e.ctx(), "r1", "w2", 10*time.Second)
	assert.ErrorIs(e.t, err, backend.ErrLeaseHeld, "Lease by w2 of an extended lease")
	e.commit(step(l1, 1, "r1/2"))
	assert.Zero(e.t, l1.Pending, "Pending of a lease of a run with an empty inbox")
	e.send("r1", "m1")
	e.send("r1", "m2")
	l3 := e.lease("r1", "w1", 10*time.Second)
	assert.Equal(e.t, 2, l3.Pending, "extended lease Pending: want 2 inbox entries")
}

func testLeaseHeld(e *env) {
	e.create("r1")
	e.lease("r1", "w1", 10*time.Second)
	e.clock.Advance(9 * time.Second)
	_, err := e.s.Lease(e.ctx(), "r1", "w2", 10*time.Second)
	assert.ErrorIs(e.t, err, backend.ErrLeaseHeld, "Lease by w2 of w1's lease")
}

func testLeaseExpired(e *env) {
	e.create("r1")
	l1 := e.lease("r1", "w1", 10*time.Second)
	e.clock.Advance(10 * time.Second)
	l2 := e.lease("r1", "w2", 10*time.Second)
	assert.Greater(e.t, l2.Token, l1.Token, "token after expiry")
	e.clock.Advance(11 * time.Second)
	l3 := e.lease("r1", "w2", 10*time.Second)
	assert.Greater(e.t, l3.Token, l2.Token, "token of an expired lease taken again by its holder")
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
	assert.Equal(e.t, "w2", e.lease("r1", "w2", 10*time.Second).Worker, "Lease after reclaim")
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
