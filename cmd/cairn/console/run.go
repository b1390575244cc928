package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
)

// runView is a run's page.
type runView struct {
	Info     backend.RunInfo
	Status   string
	Waiting  string
	TraceID  string
	TraceURL template.URL // empty if no backend is configured
	Pending  []agent.PendingCall
	// Failure is why it failed, was canceled or is parked; Diff is a
	// parked run's divergence (expected against actual).
	Failure   string
	Diff      []diffLine
	Parked    bool
	Ended     bool
	Chat      []chatItem
	ChatError string
	Timeline  []timelineRow
	Noisy     int // rows of routine events, hidden unless asked for
	// Hidden counts the events left out of a long timeline (the oldest);
	// AllEvents says the page shows them all (?events=all).
	Hidden    int
	AllEvents bool
	Encrypted int
	// Conversation says the run waits for messages (Runtime.Send).
	Conversation bool
	// Position is where the page's live stream starts: the history
	// length shown.
	Position string
}

type diffLine struct {
	Kind string // "del" (expected, from history), "add" (actual, from code) or ""
	Text string
}

// runPage shows a run.
func (c *Console) runPage(w http.ResponseWriter, r *http.Request, id Identity) {
	v, err := c.runView(r, c.viewOf(id), r.PathValue("run"))
	if err != nil {
		c.fail(w, r, id, err)
		return
	}
	c.render(w, r, http.StatusOK, "run", id, page{Title: "Run " + v.Info.ID, Nav: "runs", Run: v,
		Notice: r.URL.Query().Get("notice")})
}

func (c *Console) runView(r *http.Request, view *agent.Runtime, runID string) (*runView, error) {
	ctx := r.Context()
	client := view.Client()
	info, err := client.Describe(ctx, runID)
	if err != nil {
		return nil, err
	}
	history, err := client.History(ctx, runID)
	if err != nil {
		return nil, err
	}
	v := &runView{Info: info, Status: string(info.Status), Parked: info.Status == backend.StatusParked,
		Ended: info.Status.Terminal(), Position: strconv.FormatInt(info.HistoryLen, 10)}
	if !info.Status.Dormant() {
		v.Waiting = info.Waiting
	}
	if !info.Trace.IsZero() {
		v.TraceID = info.Trace.TraceID.String()
		if c.opts.TraceURL != "" {
			u := strings.ReplaceAll(c.opts.TraceURL, "{trace_id}", url.PathEscape(v.TraceID))
			if pu, err := url.Parse(u); err == nil && (pu.Scheme == "http" || pu.Scheme == "https") {
				v.TraceURL = template.URL(pu.String())
			}
		}
	}
	if f := info.Failure; f != nil {
		v.Failure = f.Message
		if f.Details != "" {
			v.Diff = diffLines(f.Details)
		}
	}
	if !info.Status.Dormant() {
		if v.Pending, err = view.Pending(ctx, agent.PendingFilter{RunID: runID}); err != nil && !isNotFound(err) {
			return nil, err
		}
	}
	if len(v.Pending) > 0 {
		v.Waiting = waitingFor(v.Pending)
	}
	v.Chat, v.Conversation = conversation(history)
	v.Timeline, v.Noisy, v.Encrypted = timeline(history)
	v.AllEvents = r.URL.Query().Get("events") == "all"
	if n, max := len(v.Timeline), c.opts.TimelineRows; n > max && !v.AllEvents {
		v.Hidden, v.Timeline = n-max, v.Timeline[n-max:]
	}
	return v, nil
}

// waitingFor says what a run's pending calls wait for.
func waitingFor(pending []agent.PendingCall) string {
	var parts []string
	for _, p := range pending {
		if p.Kind == agent.KindQuestion {
			parts = append(parts, "an answer to "+strconv.Quote(cut(p.Question, 60))+" ("+p.CallID+")")
		} else {
			parts = append(parts, "approval of "+p.Tool+" ("+p.CallID+")")
		}
	}
	return "a person: " + strings.Join(parts, ", ")
}

// diffLines splits a divergence's text into lines marked expected (-) and
// actual (+).
func diffLines(s string) []diffLine {
	var out []diffLine
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		kind := ""
		switch t := strings.TrimSpace(l); {
		case strings.HasPrefix(t, "- "), t == "-":
			kind = "del"
		case strings.HasPrefix(t, "+ "), t == "+":
			kind = "add"
		}
		out = append(out, diffLine{kind, l})
	}
	return out
}

// chatItem is an entry of the conversation: a message, with the tool
// calls an assistant message makes, each with its arguments, its result,
// and what people decided about it.
type chatItem struct {
	Role      string // user, assistant, system
	Text      string
	Encrypted string
	Calls     []*toolCallView
	Time      time.Time
}

type toolCallView struct {
	ID, Name, Arguments string
	Result              string
	IsError             bool
	Done                bool
	// Approval is what the call waited for and how it was decided.
	Events []decisionView
}

type decisionView struct {
	What   string // requested, approved, rejected, refused, asked, answered
	By     string
	Reason string
	Text   string
	Time   time.Time
}

// record is what the agent loop records (its fields as agent writes them).
type record struct {
	Agent     string      `json:"agent"`
	Turn      int         `json:"turn"`
	CallID    string      `json:"call_id"`
	Tool      string      `json:"tool"`
	Arguments string      `json:"arguments"`
	Approved  bool        `json:"approved"`
	By        string      `json:"by"`
	Reason    string      `json:"reason"`
	Text      string      `json:"text"`
	Result    *toolResult `json:"result"`
	Error     string      `json:"error"`
}

type toolResult struct {
	Content string `json:"content"`
	IsError bool   `json:"is_error"`
}

// conversation reads the conversation of a run's current history: the
// input message, each model answer with its tool calls, each call's
// result and the decisions about it, messages sent to a conversation.
// It reports whether the run is a conversation.
func conversation(history []backend.Event) ([]chatItem, bool) {
	var items []chatItem
	calls := map[string]*toolCallView{} // of the latest model answer
	isConversation := false
	call := func(id string) *toolCallView {
		if tc, ok := calls[id]; ok {
			return tc
		}
		return &toolCallView{} // a call of an earlier turn: dropped
	}
	for _, e := range history {
		enc, isEnc := encrypted(e.Payload)
		switch {
		case e.Type == backend.EventRunStarted:
			var in struct {
				Message      string `json:"message"`
				Conversation bool   `json:"conversation"`
				// History is what a conversation that continued as new
				// carried over.
				History []struct {
					Role       string `json:"role"`
					Content    string `json:"content"`
					ToolCallID string `json:"tool_call_id"`
					ToolCalls  []struct {
						ID, Name, Arguments string
					} `json:"tool_calls"`
				} `json:"history"`
			}
			if isEnc {
				items = append(items, chatItem{Role: "user", Encrypted: enc, Time: e.Time})
				continue
			}
			if json.Unmarshal(e.Payload, &in) != nil {
				continue
			}
			isConversation = in.Conversation
			for _, m := range in.History {
				switch m.Role {
				case "tool":
					tc := call(m.ToolCallID)
					tc.Done, tc.Result = true, m.Content
				case "user", "assistant":
					item := chatItem{Role: m.Role, Text: m.Content, Time: e.Time}
					if len(m.ToolCalls) > 0 {
						calls = map[string]*toolCallView{}
					}
					for _, tc := range m.ToolCalls {
						v := &toolCallView{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments}
						calls[tc.ID] = v
						item.Calls = append(item.Calls, v)
					}
					items = append(items, item)
				}
			}
			if in.Message != "" {
				items = append(items, chatItem{Role: "user", Text: in.Message, Time: e.Time})
			}
		case e.Type == backend.EventSignalReceived && e.Name == "cairn.message":
			var m struct {
				Text string `json:"text"`
				End  bool   `json:"end"`
			}
			switch {
			case isEnc:
				items = append(items, chatItem{Role: "user", Encrypted: enc, Time: e.Time})
			case json.Unmarshal(e.Payload, &m) == nil && m.Text != "":
				items = append(items, chatItem{Role: "user", Text: m.Text, Time: e.Time})
			}
		case e.Type == backend.EventActivityCompleted && strings.HasPrefix(e.Name, "model:"):
			if isEnc {
				items = append(items, chatItem{Role: "assistant", Encrypted: enc, Time: e.Time})
				continue
			}
			var resp struct {
				Message struct {
					Role      string `json:"role"`
					Content   string `json:"content"`
					ToolCalls []struct {
						ID, Name, Arguments string
					} `json:"tool_calls"`
				} `json:"message"`
			}
			if json.Unmarshal(e.Payload, &resp) != nil {
				continue
			}
			item := chatItem{Role: "assistant", Text: resp.Message.Content, Time: e.Time}
			calls = map[string]*toolCallView{}
			for _, tc := range resp.Message.ToolCalls {
				v := &toolCallView{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments}
				calls[tc.ID] = v
				item.Calls = append(item.Calls, v)
			}
			items = append(items, item)
		case (e.Type == backend.EventActivityCompleted || e.Type == backend.EventActivityFailed) && strings.HasPrefix(e.Name, "tool:"):
			if e.Failure != nil {
				// Which call failed is in the activity's input, which is
				// journaled as a hash: it shows in the timeline.
				continue
			}
			var out struct {
				CallID string     `json:"call_id"`
				Result toolResult `json:"result"`
				Fatal  string     `json:"fatal"`
			}
			if isEnc || json.Unmarshal(e.Payload, &out) != nil {
				continue
			}
			tc := call(out.CallID)
			tc.Done, tc.Result, tc.IsError = true, out.Result.Content, out.Result.IsError
			if out.Fatal != "" {
				tc.Result, tc.IsError = out.Fatal, true
			}
		case e.Type == backend.EventSideEffect && e.Name != "":
			var rec record
			if isEnc || json.Unmarshal(e.Payload, &rec) != nil {
				continue
			}
			tc := call(rec.CallID)
			d := decisionView{By: rec.By, Reason: rec.Reason, Time: e.Time}
			switch e.Name {
			case "approval_requested":
				d.What = "approval requested"
			case "approval_decided":
				d.What = "rejected"
				if rec.Approved {
					d.What = "approved"
				}
			case "decision_refused":
				d.What = "decision refused"
			case "question_asked":
				d.What, d.Text = "asked", rec.Text
			case "question_answered":
				d.What, d.Text = "answered", rec.Text
				tc.Done, tc.Result = true, rec.Text
			case "workflow_tool_finished":
				if rec.Result != nil {
					tc.Done, tc.Result, tc.IsError = true, rec.Result.Content, rec.Result.IsError
				}
				continue
			case "handoff":
				tc.Done, tc.Result = true, "handed over to "+rec.Agent
				continue
			default:
				continue
			}
			tc.Events = append(tc.Events, d)
		}
	}
	return items, isConversation
}

// timelineRow is an event of the history as the timeline shows it.
type timelineRow struct {
	Seq       int64
	Offset    string
	Step      string
	Type      string
	Name      string
	Attempt   string
	Took      string
	Detail    string
	Encrypted string
	Failed    bool
	Sender    string
	Noisy     bool
}

// noisy reports whether an event is routine bookkeeping that the
// timeline folds away: the start of an activity (its end shows it), a
// timer's start, a version marker, an unnamed side effect.
func noisy(e backend.Event) bool {
	switch e.Type {
	case backend.EventActivityScheduled, backend.EventActivityAttemptStarted, backend.EventTimerStarted, backend.EventVersion:
		return true
	case backend.EventSideEffect:
		return e.Name == ""
	}
	return false
}

// timeline turns a history into rows, and counts the noisy ones and the
// payloads it could not decode.
func timeline(history []backend.Event) (rows []timelineRow, noisyN, encryptedN int) {
	var start time.Time
	if len(history) > 0 {
		start = history[0].Time
	}
	for _, e := range history {
		row := timelineRow{Seq: e.Seq, Offset: "+" + e.Time.Sub(start).Round(time.Millisecond).String(), Type: string(e.Type),
			Name: e.Name, Sender: e.Sender}
		if e.Step > 0 {
			row.Step = strconv.Itoa(e.Step)
		}
		if e.Attempt > 0 {
			row.Attempt = strconv.Itoa(e.Attempt)
		}
		if !e.Started.IsZero() {
			row.Took = e.Time.Sub(e.Started).Round(time.Millisecond).String()
		}
		if enc, ok := encrypted(e.Payload); ok {
			row.Encrypted = enc
			encryptedN++
		} else if len(e.Payload) > 0 {
			row.Detail = cut(string(e.Payload), 300)
		}
		if e.Failure != nil {
			row.Failed = true
			row.Detail = cut(e.Failure.Message, 300)
		}
		switch e.Type {
		case backend.EventTimerStarted:
			row.Detail = "fires at " + e.FireAt.UTC().Format(time.RFC3339)
		case backend.EventVersion:
			row.Detail = fmt.Sprintf("version %d", e.Version)
		case backend.EventChildStarted, backend.EventChildCompleted:
			if row.Detail == "" {
				row.Detail = "run " + e.RunID
			}
		}
		if row.Noisy = noisy(e); row.Noisy {
			noisyN++
		}
		rows = append(rows, row)
	}
	return rows, noisyN, encryptedN
}
