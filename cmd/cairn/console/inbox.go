package console

import (
	"net/http"
	"strconv"

	"github.com/cairn-dev/cairn/agent"
)

// inboxView lists what waits for people across runs.
type inboxView struct {
	Kind      string
	Page      int
	Next      bool
	Requests  []agent.PendingCall
	Approvals int
	Questions int
}

// inboxPage lists the pending approvals and questions of every run, oldest
// run first, a page at a time, each with its forms.
func (c *Console) inboxPage(w http.ResponseWriter, r *http.Request, id Identity) {
	q := r.URL.Query()
	v := &inboxView{Kind: q.Get("kind"), Page: 1}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		v.Page = n
	}
	switch agent.PendingKind(v.Kind) {
	case "", agent.KindApproval, agent.KindQuestion:
	default:
		c.refuse(w, r, http.StatusBadRequest, "No such kind: "+v.Kind)
		return
	}
	all, err := c.viewOf(id).Pending(r.Context(), agent.PendingFilter{})
	if err != nil {
		c.fail(w, r, id, err)
		return
	}
	var list []agent.PendingCall
	for _, p := range all {
		switch p.Kind {
		case agent.KindApproval:
			v.Approvals++
		case agent.KindQuestion:
			v.Questions++
		}
		if v.Kind == "" || string(p.Kind) == v.Kind {
			list = append(list, p)
		}
	}
	size := c.opts.PageSize
	from, to := min((v.Page-1)*size, len(list)), min(v.Page*size, len(list))
	v.Requests, v.Next = list[from:to], to < len(list)
	c.render(w, r, http.StatusOK, "inbox", id, page{Title: "Inbox", Nav: "inbox", Inbox: v, Notice: q.Get("notice")})
}
