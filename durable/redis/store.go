// Package redis is the backend.Store for production: runs, histories,
// inboxes, leases, timers, the task queue, the activity task queues
// (backend.ActivityQueue), the runs' progress feeds (backend.Feed) and
// their archives (backend.Archive) live in Redis, through go-redis's
// UniversalClient, so one store serves a single server, Sentinel and
// Cluster alike. It passes the conformance suite in durable/storetest, as
// the in-memory store does.
//
// Each run's history is a Redis list written only by server-side
// scripts that check the writer's fencing token and the expected
// position (the list's length) atomically. All keys of a run share one
// hash tag, as do those of an activity task queue, and the task queues
// and timers are split into partitions with a hash tag each, so every
// script's keys are in one Cluster slot. Workers find work by blocking
// reads on consumer groups, and timers are sorted sets fired by a call
// scheduled on the store's clock, not by polling. See keys.go for the
// layout and lua/ for the scripts.
//
// The layout of the keys has a version (Layout), kept under the prefix:
// a store refuses, with ErrLayout, a prefix whose keys were written in
// another (layout.go says how to move on).
//
// Operations that touch a run and a partition (Send, Lease, Commit) are
// not atomic across the two slots. They write "queue first": the task or
// deadline first, the run's change after, in one pipeline; so a crash in
// between leaves at worst a spurious task, which the engine checks and
// drops. On a Cluster, whose client sends a pipeline's parts to their
// nodes at the same time, and when a partition's node loses its data (a
// failover, a restart without persistence), a run may be left without the
// task or deadline it needs: the reconciler finds such runs from their
// records and queues them again (see reconcile.go and
// WithReconcileInterval).
//
// Costs, in Redis round trips: the first call of a store one more, to
// check the layout; Commit, Lease, Send, Ack and GetRun one each in the
// common case, and the Commit, Lease, Send and Ack calls that many runs
// make at the same moment share their round trips (group commit, see
// batch.go); CreateRun two; a Poll that finds a task ready one per
// partition it looks at; PushActivity and AckActivity one; a
// PollActivity that finds an attempt ready one for one queue, two for
// several; Publish one (two when it fixes its feed's expiry), ReadFeed one
// per blocking read; WatchRun and WatchCommits one when the run has moved
// on already, else two per blocking read (a look, then XREAD); PutBlobs
// and GetBlobs one. Times are kept in milliseconds. A task delivered to a
// process that dies before it takes the run's lease is delivered again
// after the visibility timeout; a run whose worker dies holding its lease
// is queued when the lease expires.
//
// What a run costs in Redis memory: its record (a hash of short fields,
// some 500 to 700 bytes), its history (a list: its events and about a
// hundred bytes more), its inbox while messages wait in it, its feed once
// something is published to it, its archive once a blob is put in it;
// and while someone waits on the run, a stream of about 4.7 KB more (see
// watch.go). BenchmarkRunBytes measures it.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/durable/backend"
)

var (
	_ backend.Store         = (*Store)(nil)
	_ backend.Watcher       = (*Store)(nil)
	_ backend.ActivityQueue = (*Store)(nil)
)

// Defaults of the options.
const (
	DefaultPrefix            = "cairn"
	DefaultPartitions        = 6
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultRetention         = 7 * 24 * time.Hour
)

// Store is a backend.Store, backend.Watcher, backend.ActivityQueue,
// backend.Feed and backend.Archive on Redis. It is safe for concurrent
// use. Several processes may share one Redis through stores with the same
// prefix and number of partitions.
type Store struct {
	client     goredis.UniversalClient
	cluster    bool // client is a Cluster client: a pipeline sends to its nodes at the same time, a script's keys share a slot
	owned      bool // Close closes client
	dial       dialSettings
	clock      backend.Clock
	prefix     string
	parts      []*partition
	visibility time.Duration
	retention  time.Duration
	// reconcileEvery is the reconciler's interval; <= 0: off.
	reconcileEvery time.Duration
	log            *slog.Logger
	scripts        *scripts

	rotor atomic.Uint32 // where pollNow starts
	acts  *activityQueues
	// batcher sends the calls of many runs together (see batch.go).
	batcher *batcher

	// layoutMu orders checkLayout's calls to Redis and guards
	// layoutRetry, when to check again after Redis did not answer;
	// layoutChecked says the prefix's layout is this code's (layout.go).
	layoutMu      sync.Mutex
	layoutRetry   time.Time
	layoutChecked atomic.Bool

	mu      sync.Mutex
	pollers map[string]*poller
	janitor bool          // the janitor runs
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup
}

// Option configures a Store.
type Option func(*Store)

// WithClock makes the store take every time it records or compares, and
// schedule its timers, on clock instead of the system clock.
func WithClock(clock backend.Clock) Option { return func(s *Store) { s.clock = clock } }

// WithPrefix sets the prefix of every key (DefaultPrefix if not set).
// Stores with different prefixes share nothing. A prefix should hold no
// braces: they would put every key in one Cluster slot.
func WithPrefix(prefix string) Option {
	return func(s *Store) {
		if prefix != "" {
			s.prefix = prefix
		}
	}
}

// WithPartitions sets the number of partitions that runs are spread over
// (DefaultPartitions if n < 1): each is a task queue, a timer set and the
// indexes of its runs, in one Cluster slot. Every worker process reads
// every partition, with a blocking read each.
//
// On a Redis Cluster, choose a multiple of the number of masters: the
// partitions' slots are spread so that masters holding equal runs of
// slots hold equal numbers of partitions (the default, 6, suits 1, 2, 3
// or 6 masters; 12 suits 4 too). More partitions spread the load of busy
// deployments; each adds a blocking connection per worker process.
//
// All stores sharing a prefix must use the same number. Changing it moves
// runs to other partitions: the reconciler finds them again from their
// records, with one scan of the keyspace (see WithReconcileInterval), and
// queues them; until it does, their timers and tasks wait.
func WithPartitions(n int) Option {
	return func(s *Store) {
		if n >= 1 {
			s.parts = make([]*partition, n)
		}
	}
}

// WithVisibilityTimeout sets how long a polled task may stay
// unacknowledged, on the store's clock, before it is delivered again
// (DefaultVisibilityTimeout if d <= 0).
func WithVisibilityTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.visibility = d
		}
	}
}

// WithRetention sets how long the keys of a run that completed, failed or
// was canceled (its record, history, inbox, feed and archive) are kept
// after its last commit (DefaultRetention if not set; 0 keeps them for
// good). It is Redis's expiry, so it runs on Redis's clock, not the
// store's.
func WithRetention(d time.Duration) Option { return func(s *Store) { s.retention = max(d, 0) } }

// WithLogger sets the logger of the background work (slog.Default if not set).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// New returns a store on client. Close does not close client.
func New(client goredis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		client:         client,
		clock:          backend.SystemClock(),
		prefix:         DefaultPrefix,
		parts:          make([]*partition, DefaultPartitions),
		visibility:     DefaultVisibilityTimeout,
		retention:      DefaultRetention,
		reconcileEvery: DefaultReconcileInterval,
		log:            slog.Default(),
		scripts:        newScripts(),
		pollers:        make(map[string]*poller),
		acts:           newActivityQueues(),
		batcher:        newBatcher(),
		done:           make(chan struct{}),
	}
	for _, opt := range opts {
		opt(s)
	}
	_, s.cluster = client.(*goredis.ClusterClient)
	for i := range s.parts {
		s.parts[i] = s.newPartition(i)
	}
	return s
}

// Client returns the client the store uses, for example to add a
// go-redis hook for tracing or metrics to a store that Open created.
func (s *Store) Client() goredis.UniversalClient { return s.client }

// Close stops the store's background work: readers, timers and the
// janitor. Tasks and activity attempts read ahead for a Poll or
// PollActivity that never came are handed back to their queues. It closes
// the client if Open created it. A reader blocked in Redis on a client
// that Close does not close returns within a second and then exits without
// delivering anything; Close waits for it, so it hands back what it was
// reading too. On a client that Close closes, what a reader is reading at
// that moment is delivered again after the visibility timeout instead. The
// store must not be used after Close.
func (s *Store) Close() error {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return nil
	default:
	}
	close(s.done)
	s.mu.Unlock()
	s.disarm()
	s.handBack()
	s.handBackActivities()
	if !s.owned {
		s.wg.Wait()
		return nil
	}
	err := s.client.Close()
	s.wg.Wait()
	return err
}

func (s *Store) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// CreateRun implements backend.Store. A zero CreatedAt is set to the
// clock's time and an empty Status to backend.StatusPending.
//
// It writes the run's entries in its partition's indexes first, then the
// run. On a single server that is one round trip: one pipeline keeps its
// order, and the script that creates the run queues it. On a Cluster,
// where the run's slot and its partition's may be on different nodes, it
// is three: the indexes and a deadline that stands in for the run's task,
// then the run, then its task. An error means the run was not created, or
// was created but not yet indexed or queued, or the reply was lost:
// calling again with the same id is safe, and finishes the job (on a
// Cluster; on a single server the run and its task are written together).
func (s *Store) CreateRun(ctx context.Context, info backend.RunInfo, first []byte) (backend.RunInfo, bool, error) {
	if info.ID == "" {
		return backend.RunInfo{}, false, errors.New("create run: empty id")
	}
	if err := s.checkLayout(ctx); err != nil {
		return backend.RunInfo{}, false, fmt.Errorf("create run %s: %w", info.ID, err)
	}
	now := s.clock.Now()
	if info.CreatedAt.IsZero() {
		info.CreatedAt = now
	}
	if info.Status == "" {
		info.Status = backend.StatusPending
	}
	info.UpdatedAt, info.HistoryLen, info.Version, info.Generation = now, 1, 1, 0
	rk, part := s.runKeys(info.ID), s.partFor(info.ID)
	created := micros(info.CreatedAt)
	safety := deadlineMember(kindCreated, info.ID, randomID())
	index := func(p goredis.Pipeliner) {
		zadd(ctx, p, part.keys.runs(), created, info.ID, true)
		if info.Workflow != "" {
			zadd(ctx, p, part.keys.workflow(info.Workflow), created, info.ID, true)
		}
		zadd(ctx, p, part.keys.status(string(info.Status)), created, info.ID, true)
		zadd(ctx, p, part.keys.active(), created, info.ID, true)
		if s.cluster {
			p.ZAdd(ctx, part.keys.deadlines, goredis.Z{Score: float64(millis(now.Add(s.visibility))), Member: safety})
		}
	}
	var res *goredis.Cmd
	create := func(p goredis.Pipeliner) {
		args := append([]any{first, "upd", encodeTime(now)}, metaFields(info)...)
		keys := rk.list()
		if !s.cluster {
			keys = append(keys, part.keys.tasks, part.keys.queued)
		}
		res = s.scripts.create.EvalSha(ctx, p, keys, args...)
	}
	if s.cluster {
		// The partition's writes must be done before the run exists, and
		// a Cluster pipeline sends to its nodes at the same time.
		if _, err := s.pipe(ctx, index); err != nil {
			return backend.RunInfo{}, false, fmt.Errorf("create run %s: index: %w", info.ID, err)
		}
		index = func(goredis.Pipeliner) {}
	}
	if _, err := s.pipe(ctx, func(p goredis.Pipeliner) { index(p); create(p) }); err != nil {
		return backend.RunInfo{}, false, fmt.Errorf("create run %s: %w", info.ID, err)
	}
	r := newReply(res.Val())
	made := r.str(0) == "created"
	var existing map[string]string
	if !made {
		existing, r.err = pairsToMap(r.at(1))
	}
	if r.err != nil {
		return backend.RunInfo{}, false, fmt.Errorf("create run %s: %w", info.ID, r.err)
	}
	if s.cluster {
		queue := ""
		if made {
			queue = info.ID
		}
		if _, err := s.run(ctx, s.scripts.enqueue, part.keys.enqueueKeys(), queue, safety); err != nil {
			// The safety deadline queues the run a visibility timeout later.
			s.log.Warn("queue created run", "run_id", info.ID, "err", err)
			s.arm(part, now.Add(s.visibility))
		}
	}
	if made {
		return info, true, nil
	}
	old, err := decodeRecord(existing)
	if err != nil {
		return backend.RunInfo{}, false, fmt.Errorf("create run %s: %w", info.ID, err)
	}
	return old, false, nil
}

// GetRun implements backend.Store.
func (s *Store) GetRun(ctx context.Context, runID string) (backend.RunInfo, error) {
	if err := s.checkLayout(ctx); err != nil {
		return backend.RunInfo{}, fmt.Errorf("get run %s: %w", runID, err)
	}
	// The record, then what the run awaits: the second read may see a
	// later commit than the first, never an earlier one.
	rk := s.runKeys(runID)
	var record *goredis.MapStringStringCmd
	var awaiting *goredis.StringCmd
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		record, awaiting = p.HGetAll(ctx, rk.run), p.Get(ctx, rk.awaiting)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return backend.RunInfo{}, fmt.Errorf("get run %s: %w", runID, err)
	}
	fields := record.Val()
	if len(fields) == 0 {
		return backend.RunInfo{}, fmt.Errorf("get run: %w: %s", backend.ErrRunNotFound, runID)
	}
	info, err := decodeRecord(fields)
	if err != nil {
		return backend.RunInfo{}, fmt.Errorf("get run %s: %w", runID, err)
	}
	if v := awaiting.Val(); v != "" {
		info.Awaiting = []byte(v)
	}
	return info, nil
}

// historyPage is how many events ReadHistory reads per round trip.
const historyPage = 1000

// ReadHistory implements backend.Store. A from below 1 reads from 1. It
// reads historyPage events per round trip, with LRANGE: the history is a
// list whose entry at index i is the event at position i+1, so an entry
// is always at a position, and what it holds is for the decoder to judge.
func (s *Store) ReadHistory(ctx context.Context, runID string, from int64) ([][]byte, error) {
	if err := s.checkLayout(ctx); err != nil {
		return nil, fmt.Errorf("read history of %s: %w", runID, err)
	}
	rk := s.runKeys(runID)
	from = max(from, 1)
	out := [][]byte{}
	for first := true; ; first = false {
		var exists *goredis.IntCmd
		var page *goredis.StringSliceCmd
		_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			if first {
				exists = p.Exists(ctx, rk.run)
			}
			page = p.LRange(ctx, rk.history, from-1, from+historyPage-2)
			return nil
		})
		if first && exists.Err() == nil && exists.Val() == 0 {
			return nil, fmt.Errorf("read history: %w: %s", backend.ErrRunNotFound, runID)
		}
		if err != nil {
			return nil, fmt.Errorf("read history of %s: %w", runID, historyErr(err))
		}
		for _, entry := range page.Val() {
			out = append(out, []byte(entry))
		}
		from += int64(len(page.Val()))
		if len(page.Val()) < historyPage {
			return out, nil
		}
	}
}

// Send implements backend.Store. It queues the run and appends to its
// inbox in one round trip, the queue first: a Send to an unknown run
// leaves a spurious task. A call that go-redis sends again after a lost
// reply appends nothing more. Once the message is in the inbox, Send
// returns nil, even if the run could not be queued (the reconciler
// queues it).
func (s *Store) Send(ctx context.Context, runID string, event []byte) error {
	if err := s.checkLayout(ctx); err != nil {
		return fmt.Errorf("send to %s: %w", runID, err)
	}
	part := s.partFor(runID)
	var res *goredis.Cmd
	cmds, pipeErr := s.batch(ctx, func(p goredis.Pipeliner) {
		s.scripts.enqueue.EvalSha(ctx, p, part.keys.enqueueKeys(), runID, "")
		res = s.scripts.send.EvalSha(ctx, p, s.runKeys(runID).recordAndInbox(), event, randomID())
	})
	if cmds == nil {
		return fmt.Errorf("send to %s: %w", runID, pipeErr)
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("send to %s: %w", runID, err)
	}
	if pipeErr != nil {
		// The message is in the inbox; the run's task is not queued (its
		// partition's node may be down). The reconciler queues it.
		s.log.Warn("send: run not queued", "run_id", runID, "partition", part.n, "err", pipeErr)
	}
	r := newReply(res.Val())
	switch code := r.str(0); {
	case r.err != nil:
		return fmt.Errorf("send to %s: %w", runID, r.err)
	case code == "notfound":
		return fmt.Errorf("send: %w: %s", backend.ErrRunNotFound, runID)
	}
	return nil
}

// ReadInbox implements backend.Store. It returns an error wrapping
// backend.ErrRunNotFound for an unknown run.
func (s *Store) ReadInbox(ctx context.Context, runID string) ([]backend.InboxEntry, error) {
	if err := s.checkLayout(ctx); err != nil {
		return nil, fmt.Errorf("read inbox of %s: %w", runID, err)
	}
	rk := s.runKeys(runID)
	var exists *goredis.IntCmd
	var msgs *goredis.XMessageSliceCmd
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		exists = p.Exists(ctx, rk.run)
		msgs = p.XRange(ctx, rk.inbox, "-", "+")
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read inbox of %s: %w", runID, err)
	}
	if exists.Val() == 0 {
		return nil, fmt.Errorf("read inbox: %w: %s", backend.ErrRunNotFound, runID)
	}
	entries := make([]backend.InboxEntry, 0, len(msgs.Val()))
	for _, msg := range msgs.Val() {
		data, err := field(msg, "e")
		if err != nil {
			return nil, fmt.Errorf("read inbox of %s: %w: entry %s: %v", runID, backend.ErrCorruptHistory, msg.ID, err)
		}
		entries = append(entries, backend.InboxEntry{ID: msg.ID, Event: data})
	}
	return entries, nil
}

// field returns a stream entry's field as bytes.
func field(msg goredis.XMessage, name string) ([]byte, error) {
	v, ok := msg.Values[name]
	if !ok {
		return nil, fmt.Errorf("no field %q", name)
	}
	str, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("field %q is %T", name, v)
	}
	return []byte(str), nil
}

// zadd adds member to an index; nx keeps the score of a member there already.
func zadd(ctx context.Context, p goredis.Pipeliner, key, score, member string, nx bool) {
	args := []any{"zadd", key}
	if nx {
		args = append(args, "nx")
	}
	p.Do(ctx, append(args, score, member)...)
}

// randomID returns 32 random hex digits.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
