// Package inmem is a backend.Store that keeps everything in the memory of
// the process, for tests, examples and the zero-setup quickstart. Every
// run is lost when the process exits; runs that must outlive the process
// belong in the Redis store. It passes the same conformance suite
// (durable/storetest) as the Redis store.
package inmem

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

var (
	_ backend.Store   = (*Store)(nil)
	_ backend.Watcher = (*Store)(nil)
)

// DefaultVisibilityTimeout is how long a polled task may stay
// unacknowledged before it is delivered again, unless
// WithVisibilityTimeout says otherwise.
const DefaultVisibilityTimeout = 30 * time.Second

// Store is an in-memory backend.Store, backend.Watcher, backend.ActivityQueue,
// backend.Feed and backend.Archive. It is safe for concurrent use. It copies every byte slice it is given or returns, so
// callers cannot change what it holds.
//
// Poll and WatchRun block on a channel that is closed whenever a task is
// queued or a record changes; wake times, lease expiries and visibility
// timeouts are fired by a single call scheduled on the store's clock for
// the earliest of them. Nothing polls. ReadFeed blocks on a channel of
// the run's feed, closed whenever an entry is published to it.
type Store struct {
	clock      backend.Clock
	visibility time.Duration

	mu        sync.Mutex
	runs      map[string]*run
	queue     []*run            // runs with a task waiting to be polled, oldest first
	inflight  map[string]string // run id of each polled, unacknowledged task, by task id
	lastTask  int64             // id of the last task delivered
	deadlines deadlines
	timer     timer
	changed   chan struct{} // closed and replaced when a task is queued or a record changes

	activities map[string][][]byte             // activity attempts by queue, oldest first
	actOut     map[string]backend.ActivityTask // polled, unacknowledged attempts by task id

	feeds map[string]*feed // progress feeds by run id; see feed.go
}

// run is everything the store holds about one run.
type run struct {
	info      backend.RunInfo
	history   [][]byte
	inbox     []backend.InboxEntry
	lastEntry int64         // id of the last inbox entry
	lease     backend.Lease // the current or last lease; Token is 0 if none was given
	held      bool          // lease is current: taken and not released
	wakeAt    time.Time     // when to queue the run; zero if never
	queued    bool          // the run is in Store.queue
	// moved is the Version of the last commit that moved the run on
	// (backend.Watcher): 1, its creation, if none.
	moved int64

	blobs map[string][]byte // the run's archive (backend.Archive); see archive.go
}

// Option configures a Store.
type Option func(*Store)

// WithClock makes the store take its time from clock instead of the
// system clock.
func WithClock(clock backend.Clock) Option {
	return func(s *Store) { s.clock = clock }
}

// WithVisibilityTimeout sets how long a polled task may stay
// unacknowledged before it is delivered again (DefaultVisibilityTimeout if
// not set).
func WithVisibilityTimeout(d time.Duration) Option {
	return func(s *Store) { s.visibility = d }
}

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{
		clock:      backend.SystemClock(),
		visibility: DefaultVisibilityTimeout,
		runs:       make(map[string]*run),
		inflight:   make(map[string]string),
		changed:    make(chan struct{}),
		activities: make(map[string][][]byte),
		actOut:     make(map[string]backend.ActivityTask),
		feeds:      make(map[string]*feed),
	}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// CreateRun implements backend.Store. A zero CreatedAt is set to the
// clock's time and an empty Status to backend.StatusPending.
func (s *Store) CreateRun(ctx context.Context, info backend.RunInfo, first []byte) (backend.RunInfo, bool, error) {
	if info.ID == "" {
		return backend.RunInfo{}, false, errors.New("create run: empty id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.runs[info.ID]; ok {
		return r.view(), false, nil
	}
	now := s.clock.Now()
	info = cloneInfo(info)
	if info.CreatedAt.IsZero() {
		info.CreatedAt = now
	}
	if info.Status == "" {
		info.Status = backend.StatusPending
	}
	info.UpdatedAt = now
	info.HistoryLen = 1
	info.Version = 1
	r := &run{info: info, history: [][]byte{bytes.Clone(first)}, moved: 1}
	s.runs[info.ID] = r
	s.enqueue(r)
	return cloneInfo(info), true, nil
}

// GetRun implements backend.Store.
func (s *Store) GetRun(ctx context.Context, runID string) (backend.RunInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(runID)
	if err != nil {
		return backend.RunInfo{}, fmt.Errorf("get run: %w", err)
	}
	return r.view(), nil
}

var _ backend.RunCounter = (*Store)(nil)

// ListRuns implements backend.Store. Runs created at the same time are
// ordered by id, greatest first.
func (s *Store) ListRuns(ctx context.Context, filter backend.RunFilter) ([]backend.RunInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Sort the matching runs' pointers, and copy out only the records
	// returned: a page of a long list copies a page.
	var matched []*run
	for _, r := range s.runs {
		if filter.Match(r.info) {
			matched = append(matched, r)
		}
	}
	slices.SortFunc(matched, func(a, b *run) int {
		return cmp.Or(b.info.CreatedAt.Compare(a.info.CreatedAt), strings.Compare(b.info.ID, a.info.ID))
	})
	if filter.Limit > 0 && len(matched) > filter.Limit {
		matched = matched[:filter.Limit]
	}
	list := make([]backend.RunInfo, len(matched))
	for i, r := range matched {
		list[i] = r.view()
	}
	return list, nil
}

// ListAwaiting implements backend.AwaitingLister.
func (s *Store) ListAwaiting(ctx context.Context) ([]backend.RunInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []backend.RunInfo
	for _, r := range s.runs {
		if len(r.info.Awaiting) > 0 {
			v := r.view()
			list = append(list, backend.RunInfo{ID: v.ID, Workflow: v.Workflow, Status: v.Status, CreatedAt: v.CreatedAt,
				Awaiting: v.Awaiting, Inbox: v.Inbox})
		}
	}
	slices.SortFunc(list, func(a, b backend.RunInfo) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return list, nil
}

// CountRuns implements backend.RunCounter.
func (s *Store) CountRuns(ctx context.Context) (backend.RunCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c backend.RunCounts
	for _, r := range s.runs {
		c.Add(r.info.Status, r.info.Workflow)
	}
	return c, nil
}

// ReadHistory implements backend.Store. A from below 1 reads from 1.
func (s *Store) ReadHistory(ctx context.Context, runID string, from int64) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(runID)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	from = max(from, 1)
	if from > int64(len(r.history)) {
		return [][]byte{}, nil
	}
	return cloneAll(r.history[from-1:]), nil
}

// Send implements backend.Store.
func (s *Store) Send(ctx context.Context, runID string, event []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(runID)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	r.lastEntry++
	id := strconv.FormatInt(r.lastEntry, 10)
	r.inbox = append(r.inbox, backend.InboxEntry{ID: id, Event: bytes.Clone(event)})
	s.enqueue(r)
	return nil
}

// ReadInbox implements backend.Store. It returns an error wrapping
// backend.ErrRunNotFound for an unknown run.
func (s *Store) ReadInbox(ctx context.Context, runID string) ([]backend.InboxEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(runID)
	if err != nil {
		return nil, fmt.Errorf("read inbox: %w", err)
	}
	entries := make([]backend.InboxEntry, len(r.inbox))
	for i, entry := range r.inbox {
		entries[i] = backend.InboxEntry{ID: entry.ID, Event: bytes.Clone(entry.Event)}
	}
	return entries, nil
}

// WatchRun implements backend.Watcher: it returns nil as soon as a commit
// after version moved the run on, or its Version is below version. It
// returns an error wrapping backend.ErrRunNotFound for an unknown run.
func (s *Store) WatchRun(ctx context.Context, runID string, version int64) error {
	var err error
	waitErr := s.await(ctx, func() bool {
		var r *run
		if r, err = s.lookup(runID); err != nil {
			return true
		}
		return r.moved > version || r.info.Version < version
	})
	if err != nil {
		return fmt.Errorf("watch run: %w", err)
	}
	if waitErr != nil {
		return fmt.Errorf("watch run %s: %w", runID, waitErr)
	}
	return nil
}

// WatchCommits implements backend.Watcher: it returns nil as soon as the
// run's Version differs from version. It returns an error wrapping
// backend.ErrRunNotFound for an unknown run.
func (s *Store) WatchCommits(ctx context.Context, runID string, version int64) error {
	var err error
	waitErr := s.await(ctx, func() bool {
		var r *run
		if r, err = s.lookup(runID); err != nil {
			return true
		}
		return r.info.Version != version
	})
	if err != nil {
		return fmt.Errorf("watch commits: %w", err)
	}
	if waitErr != nil {
		return fmt.Errorf("watch commits of %s: %w", runID, waitErr)
	}
	return nil
}

// await calls ready with s.mu held until it reports true, waiting for a
// change between calls. It returns ctx's error if ctx is done first.
func (s *Store) await(ctx context.Context, ready func() bool) error {
	for {
		s.mu.Lock()
		ok := ready()
		changed := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notify wakes every Poll and WatchRun call that waits. s.mu must be held.
func (s *Store) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// lookup returns the run with id runID. s.mu must be held.
func (s *Store) lookup(runID string) (*run, error) {
	r, ok := s.runs[runID]
	if !ok {
		return nil, fmt.Errorf("%w: %s", backend.ErrRunNotFound, runID)
	}
	return r, nil
}

// view returns the run's record as GetRun gives it.
func (r *run) view() backend.RunInfo {
	info := cloneInfo(r.info)
	info.Inbox = len(r.inbox)
	return info
}

// cloneInfo returns a copy of info that shares no memory with it.
func cloneInfo(info backend.RunInfo) backend.RunInfo {
	if info.Failure != nil {
		f := *info.Failure
		info.Failure = &f
	}
	info.Awaiting = bytes.Clone(info.Awaiting)
	return info
}

func cloneAll(events [][]byte) [][]byte {
	out := make([][]byte, len(events))
	for i, e := range events {
		out[i] = bytes.Clone(e)
	}
	return out
}
