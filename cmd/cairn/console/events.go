package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/agent"
)

// A run's live stream (server-sent events) tells the page what changed:
//
//	event: history   the run's record moved on (data: version, status,
//	                 history length): the page reads itself again
//	event: live      an event of the run's live feed (agent.LiveEvent):
//	                 model text as it is written, tools started, ...
//	event: end       the run has ended; the stream closes
//
// Each event's id is the position reached, "<record version>~<feed id>",
// which a browser sends back as Last-Event-ID when it reconnects: the
// stream goes on from there, so nothing is missed or repeated. The page
// starts the stream at the version it was rendered from (?from=).

// heartbeat is how often an idle stream sends a comment, so that proxies
// and the browser keep it open.
const heartbeat = 15 * time.Second

// sse is an event for the stream, and the position it brings.
type sse struct {
	event   string
	data    any
	version int64  // the record's version, for history; else -1
	feed    string // the feed id, for live; else ""
}

func parsePosition(s string) (version int64, feed string) {
	v, f, _ := strings.Cut(s, "~")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		n = -1
	}
	return n, f
}

// runEvents streams a run's changes and live events.
func (c *Console) runEvents(w http.ResponseWriter, r *http.Request, id Identity) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	runID := r.PathValue("run")
	pos := r.Header.Get("Last-Event-ID")
	if pos == "" {
		pos = r.URL.Query().Get("from")
	}
	version, feed := parsePosition(pos)
	if _, err := c.view.Client().Describe(r.Context(), runID); err != nil {
		c.fail(w, r, Identity{}, err)
		return
	}
	c.streams.Add(1)
	defer c.streams.Done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 1000\n\n")
	flusher.Flush()

	out := make(chan sse)
	feedDone := make(chan struct{})
	go c.followRecord(ctx, runID, version, out)
	go func() {
		defer close(feedDone)
		c.followFeed(ctx, c.viewOf(id), runID, feed, out)
	}()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	write := func(m sse) {
		if m.version >= 0 {
			version = m.version
		}
		if m.feed != "" {
			feed = m.feed
		}
		data, err := json.Marshal(m.data)
		if err != nil {
			c.log.Warn("console: stream", "run", runID, "err", err)
			return
		}
		fmt.Fprintf(w, "id: %d~%s\nevent: %s\ndata: %s\n\n", version, feed, m.event, data)
		flusher.Flush()
	}
	// Once the record says the run has ended, the stream ends when the
	// feed has given its run_finished event (written in the background,
	// it may come after the record changed), or has nothing more to give
	// within endGrace.
	var end *sse
	var grace <-chan time.Time
	finished := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			fmt.Fprint(w, ": ping\n\n")
			flusher.Flush()
		case <-grace:
			write(*end)
			return
		case <-feedDone:
			feedDone = nil
			if end != nil {
				write(*end)
				return
			}
		case m := <-out:
			if m.event == "end" {
				if end = &m; finished || feedDone == nil {
					write(m)
					return
				}
				grace = time.After(endGrace)
				continue
			}
			write(m)
			if e, ok := m.data.(agent.LiveEvent); ok && e.Type == agent.LiveRunFinished {
				finished = true
				if end != nil {
					write(*end)
					return
				}
			}
		}
	}
}

// endGrace is how long a stream waits, once its run has ended, for the
// run's last live events.
const endGrace = time.Second

// followRecord sends a history event each time the run's record moves on
// past version, and end once the run has ended.
func (c *Console) followRecord(ctx context.Context, runID string, version int64, out chan<- sse) {
	client := c.view.Client()
	send := func(m sse) bool {
		select {
		case out <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		info, err := client.Describe(ctx, runID)
		if err != nil {
			if ctx.Err() == nil {
				send(sse{event: "end", data: map[string]string{"error": err.Error()}, version: -1})
			}
			return
		}
		if info.Version != version {
			version = info.Version
			if !send(sse{event: "history", version: version, data: map[string]any{"version": info.Version,
				"status": info.Status, "events": info.HistoryLen}}) {
				return
			}
		}
		if info.Status.Terminal() {
			send(sse{event: "end", version: -1, data: map[string]any{"status": info.Status}})
			return
		}
		if err := client.WaitCommit(ctx, info); err != nil {
			return
		}
	}
}

// followFeed sends the run's live events after feed, as they come.
func (c *Console) followFeed(ctx context.Context, view *agent.Runtime, runID, feed string, out chan<- sse) {
	for {
		events, err := view.LiveEvents(ctx, runID, feed)
		switch {
		case ctx.Err() != nil, errors.Is(err, agent.ErrNoFeed):
			return
		case err != nil:
			c.log.Warn("console: live events", "run", runID, "err", err)
			select {
			case <-time.After(time.Second):
				continue
			case <-ctx.Done():
				return
			}
		}
		for _, e := range events {
			feed = e.ID
			select {
			case out <- sse{event: "live", data: e, version: -1, feed: e.ID}:
			case <-ctx.Done():
				return
			}
		}
	}
}
