package durable

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cairn-dev/cairn/durable/backend"
)

// timelineDetailRunes caps the DETAIL column of a timeline.
const timelineDetailRunes = 60

// WriteTimeline writes a run's history to w as an aligned text table, one
// row per event: its position (SEQ), its time as an offset from the first
// event (TIME), its step, type and name, the attempt, for an event that
// ends work how long the work took (TOOK), and a short detail (a payload,
// a failure message, when a timer fires, a version).
//
// Completion events are named after the command event of their step, so
// an activity_completed row shows the activity's name. Payloads are cut
// to about 60 runes and every cell is made one line of valid UTF-8, so a
// hostile payload cannot break the table. The output depends only on
// events; it is the same every time.
func WriteTimeline(w io.Writer, events []backend.Event) error {
	header, rows := Timeline(events)
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, cells := range append([][]string{header}, rows...) {
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads every cell but the last of a line; a row with an
	// empty DETAIL would end in spaces.
	var out bytes.Buffer
	for line := range bytes.Lines(buf.Bytes()) {
		out.Write(bytes.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := w.Write(out.Bytes())
	return err
}

// Timeline returns the cells of the timeline WriteTimeline writes: the
// header, and a row for each event, every cell one line without tabs. A
// program that shows events as they come (a watch) lays out the rows of
// the new ones, computed from the whole history so far.
func Timeline(events []backend.Event) (header []string, rows [][]string) {
	names := map[int]string{}
	for _, e := range events {
		if e.Step > 0 && e.Type.IsCommand() && e.Name != "" {
			if _, ok := names[e.Step]; !ok {
				names[e.Step] = e.Name
			}
		}
	}
	var start time.Time
	if len(events) > 0 {
		start = events[0].Time
	}
	header = []string{"SEQ", "TIME", "STEP", "EVENT", "NAME", "ATTEMPT", "TOOK", "DETAIL"}
	rows = make([][]string, 0, len(events))
	for _, e := range events {
		name := e.Name
		if name == "" {
			name = names[e.Step]
		}
		rows = append(rows, []string{strconv.FormatInt(e.Seq, 10), timelineOffset(e.Time.Sub(start)),
			timelineInt(e.Step), timelineCell(string(e.Type)), timelineCell(name), timelineInt(e.Attempt),
			timelineTook(e), timelineCell(timelineDetail(e))})
	}
	return header, rows
}

// timelineTook is the TOOK cell of an event that ends work: how long the
// attempt, timer or child it ends took.
func timelineTook(e backend.Event) string {
	if e.Started.IsZero() {
		return ""
	}
	return strings.TrimPrefix(timelineOffset(e.Time.Sub(e.Started)), "+")
}

// timelineDetail is the DETAIL cell of an event.
func timelineDetail(e backend.Event) string {
	switch e.Type {
	case backend.EventTimerStarted:
		if e.FireAt.IsZero() {
			return ""
		}
		return "fires " + timelineOffset(e.FireAt.Sub(e.Time))
	case backend.EventActivityAttemptFailed:
		if e.FireAt.IsZero() {
			return timelineFailure(e.Failure)
		}
		return "retry " + timelineOffset(e.FireAt.Sub(e.Time)) + ": " + timelineFailure(e.Failure)
	case backend.EventVersion:
		return "version " + strconv.Itoa(e.Version)
	case backend.EventChildStarted:
		return "run " + e.RunID
	case backend.EventCancelRequested:
		if e.Sender != "" {
			return "by " + e.Sender
		}
		return ""
	case backend.EventSignalReceived:
		d := timelinePayload(e.Payload)
		if e.Sender != "" {
			d += " from " + e.Sender
		}
		return d
	}
	if e.Failure != nil {
		return timelineFailure(e.Failure)
	}
	return timelinePayload(e.Payload)
}

// timelinePayload is a payload as compact JSON, cut short.
func timelinePayload(p json.RawMessage) string {
	if len(p) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, p); err != nil {
		return timelineTruncate(string(p))
	}
	return timelineTruncate(buf.String())
}

func timelineFailure(f *backend.Failure) string {
	if f == nil {
		return ""
	}
	return timelineTruncate(f.Message)
}

// timelineTruncate cuts s to timelineDetailRunes runes, marking the cut
// with "…".
func timelineTruncate(s string) string {
	if utf8.RuneCountInString(s) <= timelineDetailRunes {
		return s
	}
	r := []rune(s)
	return string(r[:timelineDetailRunes-1]) + "…"
}

// timelineCell makes s one line of valid UTF-8 without tabs or control
// characters, so that it stays in its column.
func timelineCell(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// timelineOffset formats a duration as "+5.003s", rounded to the
// millisecond.
func timelineOffset(d time.Duration) string {
	d = d.Round(time.Millisecond)
	if d < 0 {
		return d.String()
	}
	return "+" + d.String()
}

// timelineInt formats n, or nothing for zero (no step, no attempt).
func timelineInt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}
