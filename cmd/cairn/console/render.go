package console

import (
	"bytes"
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

// page is what every template is given.
type page struct {
	Title  string
	Nav    string // the section: runs or inbox
	Error  string
	Notice string
	// Me is who reads; CanAct says they may act; CSRF is their token.
	Me     string
	CanAct bool
	CSRF   string

	Runs  *runsView
	Run   *runView
	Inbox *inboxView
}

// pageNames are the templates, each with the layout.
var pageNames = []string{"runs", "run", "inbox", "error"}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(templateFuncs()).ParseFS(assets, "assets/layout.html", "assets/request.html", "assets/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name string, id Identity, p page) {
	p.Me = id.Name
	p.CanAct = id.Name != ""
	if p.CanAct {
		p.CSRF = c.csrf(id)
	}
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, p); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// templateFuncs are the functions the pages call.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"time": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return roughly(time.Since(t)) + " ago"
		},
		"query": func(kv ...any) template.URL {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				if s := fmt.Sprint(kv[i+1]); s != "" && s != "0" {
					v.Set(fmt.Sprint(kv[i]), s)
				}
			}
			if len(v) == 0 {
				return ""
			}
			return template.URL("?" + v.Encode())
		},
		"cut":      cut,
		"statusOf": func(s backend.Status) string { return string(s) },
		"add":      func(a, b int) int { return a + b },
		"request": func(p page, call agent.PendingCall) requestView {
			return requestView{Page: p, Call: call, Inbox: p.Inbox != nil}
		},
	}
}

// requestView is a pending call with its forms, in the inbox or on its
// run's page.
type requestView struct {
	Page  page
	Call  agent.PendingCall
	Inbox bool
}

// roughly says a duration the way a person would glance at it.
func roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

// cut shortens s to at most n runes, marking the cut.
func cut(s string, n int) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// encrypted reports whether a payload is one the view's codec could not
// decode (cmd/cairn's codec shows it as such a string), and says how.
func encrypted(p []byte) (string, bool) {
	if !bytes.HasPrefix(p, []byte(`"(encrypted: `)) && !bytes.HasPrefix(p, []byte(`"(encoded: `)) {
		return "", false
	}
	var s string
	if json.Unmarshal(p, &s) != nil {
		return "", false
	}
	return strings.Trim(s, "()"), true
}
