package backend

import (
	"context"
	"errors"
	"time"
)

// Store is where runs live: their records, their histories, their inboxes,
// their leases and the queue of runs that need a worker. It is the only
// thing a worker and a client share, so every guarantee of the engine rests
// on the contracts written here.
//
// The interface is shaped for Redis: a history is an append-only
// list of encoded events at positions 1, 2, 3, ... that only the holder of
// the run's lease may extend, and every extension names the position it
// expects to write at and the fencing token of its lease. A store must
// reject, atomically, a commit whose token is not the run's current one or
// whose position is not the history's length.
//
// A Store is safe for concurrent use. Implementations live in subpackages
// (memory, redis) and all pass the suite in durable/storetest.
type Store interface {
	// CreateRun creates the run described by run, with first as the only
	// event of its history, and queues it for a worker. If a run with that
	// id exists already, CreateRun changes nothing and returns the existing
	// record with created false.
	CreateRun(ctx context.Context, run RunInfo, first []byte) (existing RunInfo, created bool, err error)

	// GetRun returns the record of a run, or an error wrapping ErrRunNotFound.
	GetRun(ctx context.Context, runID string) (RunInfo, error)

	// ListRuns returns the records that match filter, newest first.
	ListRuns(ctx context.Context, filter RunFilter) ([]RunInfo, error)

	// ReadHistory returns the encoded events of the run's current history
	// from position from (1-based) to its end. from beyond the end gives an
	// empty slice. It returns every entry the history holds, those beyond
	// the record's HistoryLen included, so that a reader sees damage. An
	// entry that the store cannot read as one (where a store keeps
	// positions apart from entries, an entry missing from its position)
	// ends the read with an error wrapping ErrCorruptHistory and the
	// entries before it.
	ReadHistory(ctx context.Context, runID string, from int64) ([][]byte, error)

	// Send appends an encoded event to the run's inbox and queues the run
	// for a worker. Entries keep the order in which they were sent. It
	// returns an error wrapping ErrRunNotFound for an unknown run.
	Send(ctx context.Context, runID string, event []byte) error

	// ReadInbox returns the run's inbox entries, oldest first.
	ReadInbox(ctx context.Context, runID string) ([]InboxEntry, error)

	// Poll returns the next task: a run that was created, sent a message,
	// reached its wake time, or whose lease expired without being released
	// (its worker died). It blocks until there is one or ctx is done; if a
	// task is ready it is returned even when ctx is already done, so a
	// done context makes Poll a non-blocking check.
	//
	// A task that is not acknowledged within the store's visibility
	// timeout is delivered again.
	Poll(ctx context.Context, worker string) (Task, error)

	// Ack acknowledges a task polled earlier. Acknowledging a task twice,
	// or one that was delivered again to another worker, is not an error.
	Ack(ctx context.Context, task Task) error

	// Lease takes the lease of a run for worker for ttl, or extends it if
	// worker holds it already. Taking a lease that is free or expired
	// gives a fencing token greater than every token given for that run
	// before. It returns an error wrapping ErrLeaseHeld if another worker
	// holds a lease that has not expired, and ErrRunNotFound for an
	// unknown run.
	//
	// A worker that gets ErrLeaseHeld for a polled task should not Ack it:
	// the task is then delivered again later, and in the meantime the
	// holder sees the run's inbox when it renews or releases the lease.
	Lease(ctx context.Context, runID, worker string, ttl time.Duration) (Lease, error)

	// Commit applies c atomically: all of it or nothing. It returns an
	// error wrapping ErrFenced if c.Lease is not the run's current lease
	// (it expired and was taken, or was released), and ErrConflict if the
	// run's record does not count exactly c.Expect events
	// (RunInfo.HistoryLen). See Commit for what it applies.
	//
	// A history can be damaged outside the store (an entry appended to a
	// Redis list by hand, or by another program). A commit that appends
	// Events (without NewHistory) is refused with an error wrapping
	// ErrCorruptHistory when the stored history does not hold exactly the
	// events its record counts. A commit with no Events and no NewHistory
	// writes only the
	// record and the inbox, so it succeeds whatever the history holds:
	// a run whose history is damaged can always be parked, and a parked
	// run let go, by its lease holder.
	Commit(ctx context.Context, c Commit) error
}

// Watcher is an optional capability of a Store: it blocks until a run's
// record changes after version (RunInfo.Version), or ctx is done, so that
// a client can wait without polling. WatchRun waits for the run to move
// on, and wakes a client waiting for a result, an approval or a wait a
// few times per run; WatchCommits waits for any commit, for a view that
// follows the run step by step.
//
// A run moves on with a commit that changes its Status or its Generation
// (continue-as-new), or that leaves it in any status but StatusRunning:
// it starts running, it lets go to wait (again) for a timer, a signal, an
// approval or a retry, it is parked, or it ends (MovesOn). Commits that
// leave a running run running, its steps as it takes them, do not.
//
// Both return nil at once if what they wait for came after version, or
// if the record's Version is below version (the run was created anew),
// and for nothing else; and an error wrapping ErrRunNotFound for an
// unknown run.
type Watcher interface {
	// WatchRun returns once a commit after version moved the run on.
	WatchRun(ctx context.Context, runID string, version int64) error
	// WatchCommits returns once the run's Version differs from version.
	WatchCommits(ctx context.Context, runID string, version int64) error
}

// AwaitingLister is an optional capability of a Store: it lists the runs
// whose record has an Awaiting payload (what they wait for from people,
// see durable.SetAwaiting) from an index of such runs, reading of each
// only what a list of requests needs, so that an inbox across thousands
// of waiting runs costs a few round trips.
type AwaitingLister interface {
	// ListAwaiting returns the runs whose last commit saved an Awaiting
	// payload, oldest first (by CreatedAt, then ID), with ID, Workflow,
	// Status, CreatedAt, Awaiting and Inbox set and the other fields zero.
	ListAwaiting(ctx context.Context) ([]RunInfo, error)
}

// ExportMarker is an optional capability of a Store: it records, beside a
// run's record, how far the spans of its history have been exported
// (RunInfo.SpansExported), so that a worker that takes a run over from a
// dead one emits the spans the dead one may not have exported, and no
// others (see durable.Tracing).
type ExportMarker interface {
	// MarkExported records each mark whose run still exists, is in the
	// mark's generation and is marked below the mark's position; other
	// marks change nothing. It is not fenced: marks only ever rise, and
	// any worker may record them. It does not change a record's Version.
	MarkExported(ctx context.Context, marks []ExportMark) error
}

// ExportMark says that the spans of a run's history of the given
// generation, up to Position, were exported.
type ExportMark struct {
	RunID      string
	Generation int
	Position   int64
}

// MovesOn reports whether a commit that takes a run's record from status
// from to c's moves the run on, as Watcher defines it.
func MovesOn(from Status, c Commit) bool {
	return c.Run.Status != from || c.NewHistory || c.Run.Status != StatusRunning
}

// Errors returned by stores. Callers branch on them with errors.Is.
var (
	// ErrRunNotFound means no run has the given id.
	ErrRunNotFound = errors.New("run not found")
	// ErrLeaseHeld means another worker holds the run's lease. It is not
	// retryable by the caller: the holder will release or lose the lease,
	// and the run is then queued again.
	ErrLeaseHeld = errors.New("lease held by another worker")
	// ErrFenced means the writer's lease is no longer the run's current
	// lease. The writer must stop working on the run and drop its state.
	ErrFenced = errors.New("lease lost: write fenced")
	// ErrConflict means the history did not have the expected length. The
	// writer's view of the run is stale; it must drop its state.
	ErrConflict = errors.New("history position conflict")
	// ErrCorruptHistory means a history or inbox entry cannot be decoded.
	// The run is parked.
	ErrCorruptHistory = errors.New("corrupt history entry")
	// ErrUnknownEvent means an entry was written by a newer version of
	// cairn. The run is parked until a worker that knows it runs it.
	ErrUnknownEvent = errors.New("unknown event")
)

// Status is the state of a run.
type Status string

// Run statuses.
const (
	// StatusPending: created, not yet picked up by a worker.
	StatusPending Status = "pending"
	// StatusRunning: a worker is executing it, or its activities.
	StatusRunning Status = "running"
	// StatusWaiting: waiting for a timer, a signal or a child run; it holds
	// no worker.
	StatusWaiting Status = "waiting"
	// StatusAwaitingApproval: waiting, as StatusWaiting, for a person to
	// approve or reject something (see durable.SetWaitingStatus).
	StatusAwaitingApproval Status = "awaiting_approval"
	// StatusCompleted: the workflow returned a result.
	StatusCompleted Status = "completed"
	// StatusFailed: the workflow returned an error or panicked.
	StatusFailed Status = "failed"
	// StatusCanceled: the run was canceled and the workflow returned.
	StatusCanceled Status = "canceled"
	// StatusParked: the run cannot go on with the code deployed (a
	// non-determinism error, an undecodable or unknown event, an
	// unregistered workflow). It is retried when a worker starts.
	StatusParked Status = "parked"
)

// Terminal reports whether a run in status s has ended for good.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCanceled
}

// Dormant reports whether a run in status s is not to be executed on news:
// it has ended, or it is parked until a worker retries it.
func (s Status) Dormant() bool { return s.Terminal() || s == StatusParked }

// RunInfo is the record of a run: what a store keeps beside its history
// and what durable.Client.Describe returns.
type RunInfo struct {
	ID         string    `json:"id"`
	Workflow   string    `json:"workflow"`
	InputHash  string    `json:"input_hash"`
	Status     Status    `json:"status"`
	ParentID   string    `json:"parent_id,omitempty"`
	ParentStep int       `json:"parent_step,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Trace is the trace the run belongs to, fixed when it is created.
	Trace Trace `json:"trace,omitzero"`
	// Generation counts continue-as-new restarts; each has its own history.
	Generation int `json:"generation,omitempty"`
	// HistoryLen is the number of events in the current history.
	HistoryLen int64 `json:"history_len"`
	// Step is the last step the workflow issued.
	Step int `json:"step,omitempty"`
	// Waiting says in words what the run waits for, when it waits.
	Waiting string `json:"waiting,omitempty"`
	// WakeAt is the earliest time the run must be woken (a timer or a
	// retry), zero if none.
	WakeAt time.Time `json:"wake_at,omitzero"`
	// Failure is why a run failed, was canceled or is parked.
	Failure *Failure `json:"failure,omitempty"`
	// Awaiting is what the run waits for from people or other programs
	// (approvals, answers), as its workflow last set it
	// (durable.SetAwaiting): a payload encoded by EncodePayload, nil if
	// none. A store saves it with each commit; one that is an
	// AwaitingLister lists the runs that have one.
	Awaiting []byte `json:"awaiting,omitempty"`
	// Inbox counts the messages in the run's inbox: sent, and not yet
	// consumed by a commit. The store keeps it; a Commit's is ignored.
	Inbox int `json:"inbox,omitempty"`
	// SpansExported is the position in the current history up to which
	// the spans of the run's events are known to have been exported by
	// the workers that wrote them (see ExportMarker); 0 if none are.
	// Recording it is not a change of the record: Version stays.
	SpansExported int64 `json:"spans_exported,omitempty"`
	// Version increases with every change to the record.
	Version int64 `json:"version"`
}

// RunFilter selects runs in ListRuns. Zero fields match everything.
type RunFilter struct {
	Status   Status
	Workflow string
	// Limit caps the number of records returned; 0 means no cap.
	Limit int
}

// Match reports whether run matches the filter, ignoring Limit.
func (f RunFilter) Match(run RunInfo) bool {
	return (f.Status == "" || run.Status == f.Status) &&
		(f.Workflow == "" || run.Workflow == f.Workflow)
}

// InboxEntry is one message in a run's inbox.
type InboxEntry struct {
	// ID is assigned by the store; it orders entries and names them in
	// Commit.Consumed.
	ID    string
	Event []byte
}

// Task says that a run needs a worker.
type Task struct {
	RunID string
	// ID identifies this delivery for Ack; its form is the store's.
	ID string
}

// Lease is the right to write a run's history. Token is the fencing token.
type Lease struct {
	RunID   string
	Worker  string
	Token   int64
	Expires time.Time
	// Pending is the number of entries in the run's inbox when the lease
	// was taken or extended: a busy holder learns of messages when it
	// renews its lease.
	Pending int
	// TakenOver says the lease was taken from another worker whose lease
	// had expired without being released: that worker died, or stalled
	// past its lease. Extending a lease, or taking one that was released
	// or never held, is not taking over.
	TakenOver bool
}

// Commit is one atomic write of a run by its lease holder.
type Commit struct {
	Lease Lease
	// Expect is the number of events the writer has seen in the current
	// history; Events are written at positions Expect+1, Expect+2, ...
	Expect int64
	// Events are encoded events to append.
	Events [][]byte
	// NewHistory starts a new history for the run (continue-as-new):
	// Events replace the current history instead of extending it, Expect
	// still names the length of the current one, and the record's
	// Generation is increased.
	NewHistory bool
	// Run is the record to save. The store keeps ID, Workflow, InputHash,
	// ParentID, ParentStep and CreatedAt as they are, and sets HistoryLen,
	// Generation, UpdatedAt, Version and Inbox itself.
	Run RunInfo
	// Consumed are ids of inbox entries that Events moved into history;
	// they are removed from the inbox.
	Consumed []string
	// Release gives up the lease. If the inbox still holds entries after
	// Consumed are removed, the run is queued again at once, unless
	// Run.Status is dormant (parked or ended): messages to such a run wait
	// for it to be retried, or are never read.
	//
	// Whether released or not, the store queues the run when Run.WakeAt
	// comes. Each commit replaces the run's wake time; a zero WakeAt
	// clears it.
	Release bool
}

// ActivityQueue is an optional capability of a Store: named queues of
// activity attempts, served by workers in other processes (see
// durable.ActivityOptions.TaskQueue and durable.WorkerOptions.TaskQueues).
type ActivityQueue interface {
	// PushActivity appends an encoded activity attempt to a queue.
	PushActivity(ctx context.Context, queue string, attempt []byte) error
	// PollActivity returns the oldest attempt of any of the queues. It
	// blocks as Poll does, and like Poll returns a ready attempt even when
	// ctx is already done. An attempt that is not acknowledged within the
	// store's visibility timeout is delivered again.
	PollActivity(ctx context.Context, worker string, queues []string) (ActivityTask, error)
	// AckActivity acknowledges an attempt polled earlier.
	AckActivity(ctx context.Context, task ActivityTask) error
}

// ActivityTask is an activity attempt taken from a queue.
type ActivityTask struct {
	Queue string
	// ID identifies this delivery for AckActivity; its form is the store's.
	ID      string
	Attempt []byte
}

// Feed is an optional capability of a Store: a per-run feed of progress
// entries (model text as it is generated, tools started and finished) that
// readers follow live and resume after a reconnect from the last id they
// saw.
//
// A feed is not history: it is not fenced, not replayed and not the truth
// of a run. Anyone may publish to it, a store may cap it to its most recent
// entries, and it expires with the run. Publishing to a run that does not
// exist is allowed (a feed may start before its run's record is visible).
type Feed interface {
	// Publish appends entries to the run's feed, in order, in one
	// operation where the store can, and returns their ids. Ids increase
	// within a feed and compare as strings of the form the store chooses;
	// readers treat them as opaque.
	Publish(ctx context.Context, runID string, entries ...[]byte) (ids []string, err error)
	// ReadFeed returns up to limit entries (limit <= 0: the store's
	// default) that come after the entry with id after, oldest first;
	// after "" reads from the oldest entry kept. If there is none yet it
	// waits for one until ctx is done, then returns ctx's error.
	ReadFeed(ctx context.Context, runID, after string, limit int) ([]FeedEntry, error)
}

// FeedEntry is one entry of a run's feed.
type FeedEntry struct {
	ID   string
	Data []byte
}
