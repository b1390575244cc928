package durable

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// status is the record to commit for the run's current state.
func (ex *executor) status(s backend.Status) backend.RunInfo {
	info := ex.info
	info.Status = s
	info.Step = ex.rt.lastStep
	info.Waiting = ex.rt.waiting()
	info.WakeAt, _ = ex.nextWake()
	info.Failure = nil
	info.Awaiting = ex.encodeAwaiting()
	return info
}

// encodeAwaiting returns the run's awaiting payload (SetAwaiting) encoded
// for its record, encoding it again only when it changed.
func (ex *executor) encodeAwaiting() []byte {
	a := ex.rt.awaiting
	if a == nil {
		return nil
	}
	if !bytes.Equal(a, ex.awaitingJSON) {
		enc, err := backend.EncodePayload(a, ex.w.codec)
		if err != nil {
			// Only a codec can fail here.
			ex.parked = err
			return nil
		}
		ex.awaitingJSON, ex.awaitingEnc = a, enc
	}
	return ex.awaitingEnc
}

// commit writes the events since the last commit with the run's status: a
// run that ended is written as such, an idle one is let go (its state is
// dropped from memory; it is replayed when something arrives or its next
// timer is due), a busy one stays running.
func (ex *executor) commit(ctx context.Context, idle bool) error {
	fresh := ex.rt.takeFresh()
	var c backend.Commit
	switch o := ex.rt.outcome; {
	case o != nil:
		c.Run = ex.status(map[backend.EventType]backend.Status{backend.EventRunCompleted: backend.StatusCompleted,
			backend.EventRunFailed: backend.StatusFailed, backend.EventRunCanceled: backend.StatusCanceled}[o.Type])
		c.Run.Waiting, c.Run.WakeAt, c.Run.Failure, c.Run.Awaiting = "", time.Time{}, o.Failure, nil
		// A child keeps its lease until its parent has been told, so that
		// a crash in between leaves a lease to expire and a worker to tell;
		// a traced run until its last spans are exported, so that a crash
		// in between leaves a worker to send them (see finish).
		c.Release = ex.info.ParentID == "" && !ex.w.tracer.holdsEnded()
	case idle:
		c.Run, c.Release = ex.status(cmp.Or(ex.rt.waitStatus, backend.StatusWaiting)), true
	default:
		c.Run = ex.status(backend.StatusRunning)
		if len(fresh) == 0 && len(ex.consumed) == 0 && ex.info.Status == backend.StatusRunning && ex.newHistory == nil {
			return nil
		}
	}
	if ex.newHistory != nil {
		fresh = append([]backend.Event{*ex.newHistory}, fresh...)
		c.NewHistory = true
		c.Run.Generation = ex.rt.generation
	}
	c.Events = ex.encode(fresh)
	if ex.parked != nil {
		return ex.park(ctx)
	}
	return ex.write(ctx, c, fresh)
}

// write commits c, whose encoded events are events, with the executor's
// lease and position, and tells the worker's observers.
func (ex *executor) write(ctx context.Context, c backend.Commit, events []backend.Event) error {
	if c.Release {
		if len(ex.w.observers) > 0 || ex.w.tracer != nil {
			// The next executor of the run, which may start as soon
			// as the lease is released, waits for the observers.
			defer ex.w.observe(ex.runID)()
		}
		ex.w.detach(ex)
	}
	c.Lease = ex.lease
	c.Expect = ex.committed
	c.Consumed = ex.consumed
	if err := ex.commitRetrying(ctx, c); err != nil {
		if errors.Is(err, backend.ErrCorruptHistory) && ex.parked == nil {
			// The history was changed outside the store since it was
			// read: the record alone can still be written.
			ex.parked = err
			return ex.park(ctx)
		}
		return fmt.Errorf("commit: %w", err)
	}
	ex.consumed = nil
	var previous []backend.Event
	if c.NewHistory {
		ex.committed = int64(len(c.Events))
		ex.info.Generation++
		ex.newHistory = nil
		previous, ex.previous = ex.previous, nil
	} else {
		ex.committed += int64(len(c.Events))
	}
	ex.info.Status = c.Run.Status
	ex.record = c.Run
	ex.record.HistoryLen, ex.record.Generation = ex.committed, ex.info.Generation
	if len(ex.w.observers) > 0 || ex.w.tracer != nil {
		w := Written{Run: c.Run, Events: events, Previous: previous, Replayed: ex.replayed}
		w.Run.HistoryLen, w.Run.Generation = ex.committed, ex.info.Generation
		if ex.w.tracer != nil {
			ex.w.tracer.written(ctx, w)
		}
		for _, observe := range ex.w.observers {
			observe(ctx, w)
		}
	}
	return nil
}

// commitRetrying commits c, trying again for a while when the store cannot
// be reached, so that a blip does not make the run wait for its lease to
// expire. A retry of a commit that was applied after all is rejected as a
// conflict: fencing makes retries safe.
//
// A commit begun is seen through even when the worker is told to stop
// (ctx is canceled), for at most a third of the lease: canceled, a commit
// the store applied could come back as an error, and its events would go
// unreported to the observers and unsent as spans.
func (ex *executor) commitRetrying(ctx context.Context, c backend.Commit) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ex.w.leaseTTL/3)
	defer cancel()
	wait := 20 * time.Millisecond
	deadline := ex.now().Add(ex.w.leaseTTL / 3)
	for {
		err := ex.w.store.Commit(ctx, c)
		if err == nil || errors.Is(err, backend.ErrFenced) || errors.Is(err, backend.ErrConflict) || errors.Is(err, backend.ErrRunNotFound) ||
			ctx.Err() != nil || ex.now().Add(wait).After(deadline) {
			return err
		}
		ex.log.Warn("commit failed; trying again", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		wait *= 2
	}
}

func (ex *executor) encode(events []backend.Event) [][]byte {
	out := make([][]byte, 0, len(events))
	for _, e := range events {
		data, err := backend.EncodeEvent(e, ex.w.codec)
		if err != nil {
			// Payloads are JSON already; only a codec can fail here.
			ex.parked = err
			return nil
		}
		out = append(out, data)
	}
	return out
}

// continueAsNew starts the workflow over in a new runtime whose history
// begins with start; the next commit replaces the run's history with it.
// Signals delivered and not yet received are delivered again, after
// whatever the workflow did when it started, as they would have been had
// they arrived then.
func (ex *executor) continueAsNew(start backend.Event) {
	start.Seq, start.Time, start.Name, start.Trace = 1, ex.now(), ex.info.Workflow, ex.info.Trace
	carried := ex.rt.carriedSignals()
	ex.previous = append(ex.previous, ex.rt.takeFresh()...)
	for _, cancel := range ex.running {
		cancel(errLeaseLost)
	}
	clear(ex.running)
	ex.toStart, ex.children = nil, nil
	def := ex.rt.def
	ex.rt.close()
	ex.rt = newRuntime(ex.info.ID, ex.info.Generation+1, def, ex.w.log)
	ex.rt.load([]backend.Event{start})
	ex.newHistory = &start
	ex.adopt(ex.rt.takeIssued())
	for _, s := range carried {
		ex.apply(backend.Event{Type: s.Type, Name: s.Name, Payload: s.Payload, Sender: s.Sender})
	}
}

// finish tells the parent of a child run that ended, then lets it go: at
// once, or, when the worker traces, once the spans of its last write are
// exported.
func (ex *executor) finish(ctx context.Context) error {
	if ex.info.ParentID != "" {
		return ex.w.notifyParent(ctx, ex.lease, ex.info, ex.committed, *ex.rt.outcome)
	}
	if ex.w.tracer.holdsEnded() {
		ex.w.tracer.releaseAfterExport(ex.lease, ex.record)
	}
	return nil
}

// handOff lets a busy run go when the worker stops, and queues it at once
// for another worker, which need not wait for the lease to expire. Its
// activity attempts in flight are cut off and run again there.
func (ex *executor) handOff() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info := ex.status(backend.StatusRunning)
	info.WakeAt = ex.now()
	if err := ex.write(ctx, backend.Commit{Run: info, Release: true}, nil); err != nil {
		ex.log.Warn("hand run off", "err", err)
	}
}

// park stops a run that cannot go on with this code, saying why.
func (ex *executor) park(ctx context.Context) error {
	f := failureOf(ex.parked)
	var nd *NondeterminismError
	switch {
	case errors.As(ex.parked, &nd):
		f.Kind, f.Details = backend.KindNondeterminism, nd.Diff()
	case errors.Is(ex.parked, ErrUnregistered):
		f.Kind = backend.KindUnregistered
	case errors.Is(ex.parked, backend.ErrUnknownEvent):
		f.Kind = backend.KindUnknownEvent
	case errors.Is(ex.parked, backend.ErrCorruptHistory):
		f.Kind = backend.KindCorrupt
	}
	ex.log.Error("run parked", "reason", f.Message)
	info := ex.info
	// A parked run waits for a worker to retry it, not for a time: a wake
	// time kept from its record (a timer, a hand-off) would queue it again
	// and again, each worker leaving it parked.
	info.Status, info.Failure, info.Waiting, info.WakeAt, info.Awaiting = backend.StatusParked, f, "", time.Time{}, nil
	ex.consumed = ex.resumes // what was not journaled stays in the inbox, but resume requests were answered
	return ex.write(ctx, backend.Commit{Run: info, Release: true}, nil)
}
