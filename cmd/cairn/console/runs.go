package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/durable/backend"
)

// statuses are the run statuses, in the order the console lists them.
var statuses = []backend.Status{backend.StatusAwaitingApproval, backend.StatusWaiting, backend.StatusRunning,
	backend.StatusPending, backend.StatusParked, backend.StatusFailed, backend.StatusCompleted, backend.StatusCanceled}

// runsView is the run list.
type runsView struct {
	Status, Workflow, Query string
	Page                    int
	Next                    bool
	Runs                    []backend.RunInfo
	Counts                  []statusCount
	Total                   int
	Workflows               []string
	CountedAt               time.Time
}

type statusCount struct {
	Status backend.Status
	N      int
}

func isNotFound(err error) bool { return errors.Is(err, backend.ErrRunNotFound) }

// runsPage lists runs, newest first, a page at a time, with the counts
// of runs by status.
func (c *Console) runsPage(w http.ResponseWriter, r *http.Request, id Identity) {
	ctx := r.Context()
	q := r.URL.Query()
	v := &runsView{Status: q.Get("status"), Workflow: q.Get("workflow"), Query: strings.TrimSpace(q.Get("q")), Page: 1}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		v.Page = n
	}
	if v.Status != "" && !slices.Contains(statuses, backend.Status(v.Status)) {
		c.refuse(w, r, http.StatusBadRequest, "No such status: "+v.Status)
		return
	}
	p := page{Title: "Runs", Nav: "runs", Runs: v}
	if v.Query != "" {
		// Search by id: a run that has it is opened.
		if _, err := c.view.Client().Describe(ctx, v.Query); err == nil {
			http.Redirect(w, r, "/runs/"+url.PathEscape(v.Query), http.StatusSeeOther)
			return
		} else if !isNotFound(err) {
			c.fail(w, r, id, err)
			return
		}
		p.Notice = "No run has the id " + strconv.Quote(v.Query) + "."
	}
	size := c.opts.PageSize
	list, err := c.view.Client().ListRuns(ctx, backend.RunFilter{Status: backend.Status(v.Status), Workflow: v.Workflow,
		Limit: v.Page*size + 1})
	if err != nil {
		c.fail(w, r, id, err)
		return
	}
	if len(list) > v.Page*size {
		v.Next, list = true, list[:v.Page*size]
	}
	if from := (v.Page - 1) * size; from < len(list) {
		v.Runs = list[from:]
	}
	counts := c.counts.get(ctx, c)
	v.Total, v.CountedAt, v.Workflows = counts.total, counts.at, counts.workflows
	for _, s := range statuses {
		v.Counts = append(v.Counts, statusCount{s, counts.byStatus[s]})
	}
	c.render(w, r, http.StatusOK, "runs", id, p)
}

// counts are the numbers of runs by status, and the workflows seen.
type counts struct {
	at        time.Time
	total     int
	byStatus  map[backend.Status]int
	workflows []string
}

// countsCache keeps the counts of runs, counted again in the background
// once they are older than Options.CountsMaxAge: a page shows counts at
// most that old (the first waits for them), and never waits for a count
// while an older one is there.
type countsCache struct {
	mu       sync.Mutex
	last     *counts
	counting bool
	done     chan struct{} // closed when the count under way ends
}

func (cc *countsCache) get(ctx context.Context, c *Console) counts {
	cc.mu.Lock()
	last := cc.last
	if last != nil && time.Since(last.at) < c.opts.CountsMaxAge {
		cc.mu.Unlock()
		return *last
	}
	if !cc.counting {
		cc.counting = true
		cc.done = make(chan struct{})
		go cc.count(c)
	}
	done := cc.done
	cc.mu.Unlock()
	if last != nil {
		return *last
	}
	select {
	case <-done:
	case <-ctx.Done():
		return counts{byStatus: map[backend.Status]int{}}
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.last == nil {
		return counts{byStatus: map[backend.Status]int{}}
	}
	return *cc.last
}

// count counts the runs by status: with the store's RunCounter, or else
// with a pass over every run's record.
func (cc *countsCache) count(c *Console) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	at := time.Now()
	rc, err := countRuns(ctx, c)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.counting = false
	close(cc.done)
	if err != nil {
		c.log.Warn("console: count runs", "err", err)
		return
	}
	n := &counts{at: at, total: rc.Total, byStatus: rc.ByStatus}
	if n.byStatus == nil {
		n.byStatus = map[backend.Status]int{}
	}
	for wf := range rc.ByWorkflow {
		n.workflows = append(n.workflows, wf)
	}
	slices.Sort(n.workflows)
	cc.last = n
}

func countRuns(ctx context.Context, c *Console) (backend.RunCounts, error) {
	if counter, ok := c.opts.Store.(backend.RunCounter); ok {
		return counter.CountRuns(ctx)
	}
	var rc backend.RunCounts
	list, err := c.view.Client().ListRuns(ctx, backend.RunFilter{})
	for _, r := range list {
		rc.Add(r.Status, r.Workflow)
	}
	return rc, err
}
