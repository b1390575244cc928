package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
)

// done answers an action that succeeded: JSON for the page's script, or
// a redirect back to the page the form was on, with a notice.
func (c *Console) done(w http.ResponseWriter, r *http.Request, notice string) {
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "notice": notice})
		return
	}
	back := localPath(r.PostFormValue("back"), "/runs/"+url.PathEscape(r.PathValue("run")))
	back, _, _ = strings.Cut(back, "?")
	http.Redirect(w, r, back+"?notice="+url.QueryEscape(notice), http.StatusSeeOther)
}

// actionError answers an action that was refused or failed.
func (c *Console) actionError(w http.ResponseWriter, r *http.Request, id Identity, err error) {
	code := 0
	switch {
	case errors.Is(err, agent.ErrNotAuthorized):
		code = http.StatusForbidden
	case errors.Is(err, agent.ErrInvalidAnswer):
		code = http.StatusBadRequest
	case errors.Is(err, agent.ErrNotPending), errors.Is(err, durable.ErrRunEnded), errors.Is(err, durable.ErrNotParked):
		code = http.StatusConflict
	}
	if code == 0 {
		c.fail(w, r, id, err)
		return
	}
	c.refuse(w, r, code, err.Error())
}

// decide approves or rejects a pending call (verdict=approve|reject); a
// rejection needs a reason, which the model is told.
func (c *Console) decide(w http.ResponseWriter, r *http.Request, id Identity) {
	runID, callID := r.PathValue("run"), r.PathValue("call")
	verdict, reason := r.PostFormValue("verdict"), strings.TrimSpace(r.PostFormValue("reason"))
	if verdict != "approve" && verdict != "reject" {
		c.refuse(w, r, http.StatusBadRequest, "Approve or reject: verdict must be approve or reject.")
		return
	}
	if verdict == "reject" && reason == "" {
		c.refuse(w, r, http.StatusBadRequest, "A rejection needs a reason: the model is told why its call was rejected.")
		return
	}
	d := agent.Decision{CallID: callID, Approved: verdict == "approve", By: id.Name, Reason: reason}
	if err := c.rt.Decide(r.Context(), runID, d); err != nil {
		c.actionError(w, r, id, err)
		return
	}
	// Sent, not yet taken in: the run's worker checks it again, and
	// the page shows what it records.
	c.done(w, r, map[bool]string{true: "Approval", false: "Rejection"}[d.Approved]+" of call "+callID+" of run "+runID+
		" sent as "+id.Name+".")
}

// answer answers a question a run's model asked, or one of its tools (an
// MCP server's: text is then a JSON object valid against the question's
// schema, or action declines or cancels it).
func (c *Console) answer(w http.ResponseWriter, r *http.Request, id Identity) {
	runID, callID := r.PathValue("run"), r.PathValue("call")
	text, action := strings.TrimSpace(r.PostFormValue("text")), r.PostFormValue("action")
	if text == "" && action == "" {
		// A URL to visit takes no text: "Done" accepts.
		if qs, err := c.rt.Pending(r.Context(), agent.PendingFilter{RunID: runID}); err != nil || !visit(qs, callID) {
			c.refuse(w, r, http.StatusBadRequest, "The answer is empty.")
			return
		}
	}
	if action != "" {
		text = ""
	}
	if err := c.rt.Answer(r.Context(), runID, agent.Answer{CallID: callID, By: id.Name, Text: text, Action: action}); err != nil {
		c.actionError(w, r, id, err)
		return
	}
	what := map[string]string{"": "Answer to", "decline": "Declining of", "cancel": "Canceling of"}[action]
	c.done(w, r, what+" call "+callID+" of run "+runID+" sent as "+id.Name+".")
}

// visit reports whether the call callID among qs asks to visit a URL.
func visit(qs []agent.PendingCall, callID string) bool {
	for _, q := range qs {
		if q.CallID == callID && q.URL != "" {
			return true
		}
	}
	return false
}

// cancel asks a run to cancel, as the identity.
func (c *Console) cancel(w http.ResponseWriter, r *http.Request, id Identity) {
	runID := r.PathValue("run")
	if err := c.rt.AuthorizeRun(r.Context(), runID, agent.RunCancel, id.Name); err != nil {
		c.actionError(w, r, id, err)
		return
	}
	if err := c.rt.Client().Cancel(durable.WithSender(r.Context(), id.Name), runID); err != nil {
		c.actionError(w, r, id, err)
		return
	}
	c.done(w, r, "Asked run "+runID+" to cancel.")
}

// resume asks for a parked run to be tried again.
func (c *Console) resume(w http.ResponseWriter, r *http.Request, id Identity) {
	runID := r.PathValue("run")
	if err := c.rt.AuthorizeRun(r.Context(), runID, agent.RunResume, id.Name); err != nil {
		c.actionError(w, r, id, err)
		return
	}
	if err := c.rt.Client().Resume(durable.WithSender(r.Context(), id.Name), runID); err != nil {
		c.actionError(w, r, id, err)
		return
	}
	c.done(w, r, "Asked for run "+runID+" to be tried again.")
}

// send sends a message to a conversation run.
func (c *Console) send(w http.ResponseWriter, r *http.Request, id Identity) {
	runID := r.PathValue("run")
	text := strings.TrimSpace(r.PostFormValue("text"))
	if text == "" {
		c.refuse(w, r, http.StatusBadRequest, "The message is empty.")
		return
	}
	if err := c.rt.AuthorizeRun(r.Context(), runID, agent.RunSend, id.Name); err != nil {
		c.actionError(w, r, id, err)
		return
	}
	msgID, err := c.rt.Send(durable.WithSender(r.Context(), id.Name), runID, text)
	if err != nil {
		c.actionError(w, r, id, err)
		return
	}
	c.done(w, r, "Sent message "+msgID+" to run "+runID+".")
}
