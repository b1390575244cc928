package redis

// demand says whether anyone waits for what a reader reads (a Poll of a
// worker, a PollActivity of a queue), and whether the last one to wait
// stopped waiting because its context ended: its worker stopped polling,
// so what a reader holds for it, or reads now, is held for nobody and goes
// back to its queue at once. Its owner's lock guards it.
type demand struct {
	waiting int
	wanted  chan struct{} // closed while waiting > 0
	gone    chan struct{} // closed while waiting == 0 after a stop
	stopped bool          // gone is closed
}

func newDemand() demand {
	return demand{wanted: make(chan struct{}), gone: make(chan struct{})}
}

// add adds n to the number of waiters.
func (d *demand) add(n int) {
	was := d.waiting
	d.waiting += n
	switch {
	case was == 0 && d.waiting > 0:
		close(d.wanted)
		if d.stopped {
			d.gone, d.stopped = make(chan struct{}), false
		}
	case was > 0 && d.waiting == 0:
		d.wanted = make(chan struct{})
	}
}

// stop records that a waiter left because its context ended; if it was
// the last, the demand is gone.
func (d *demand) stop() {
	if d.waiting == 0 && !d.stopped {
		close(d.gone)
		d.stopped = true
	}
}
