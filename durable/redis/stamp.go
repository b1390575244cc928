package redis

import "context"

// stampLock orders the take scripts that a store runs on one deadline set
// (a partition's, an activity queue's) by the times it gives them.
//
// A take script gets the time from the store's clock, read before the
// script is sent, and stamps what it delivers with it: a delivery's
// visibility deadline is that time plus the visibility timeout. Unordered,
// a take that read the clock at t may run in Redis after one that read it
// later, at t', and sent its script first: the alarm's take, say, which
// fired a visibility deadline due at t' and queued its task again. The
// first take then delivers that task stamped t, and if t' is a visibility
// timeout past t, the new delivery's deadline has passed already: the
// next take delivers the task once more, with no time passing.
//
// So a take waits for the deadline set's lock, reads the clock only then,
// and keeps the lock until Redis replies: the takes of one store run in
// the order of the times they read. Between stores, the stamps are as
// consistent as the stores' clocks.
type stampLock chan struct{}

func newStampLock() stampLock { return make(stampLock, 1) }

// lock waits until l is free and takes it, or returns ctx's error.
func (l stampLock) lock(ctx context.Context) error {
	select {
	case l <- struct{}{}:
		return nil
	default:
	}
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l stampLock) unlock() { <-l }
