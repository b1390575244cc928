// Package console is cairn's web console: the pages that show runs, their
// conversations and timelines as they happen, and an inbox where people
// approve or reject tool calls and answer agents' questions. `cairn ui`
// (package cmd/cairn/cli) serves it; a program can also mount it in its
// own HTTP server, with its own authentication.
//
// Who may do what:
//
//   - Every request is authenticated (Options.Authenticate): by default
//     with a token given when the console starts, exchanged for a cookie
//     at /login?token=... A request without one is refused.
//   - Reading needs an identity; acting (decide, answer, cancel, resume,
//     send) needs a named one. Every state-changing request must carry the
//     page's CSRF token, and is refused if the browser says it comes from
//     another origin.
//   - Decisions and answers go through the Runtime's Authorizer, under the
//     identity's name, which history records; workers check them again
//     (see agent.Authorizer).
//
// Everything a model, a tool or a person wrote is shown as text: pages are
// html/template, and the page's script sets only textContent. A payload
// that the view's codec cannot decode is shown as encrypted.
package console

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/backend"
)

//go:embed assets
var assets embed.FS

// Identity is who makes a request. Name is recorded as the sender of what
// they send and as the decider of what they decide; an Identity with no
// Name may read but not act.
type Identity struct {
	Name string
}

// ErrUnauthenticated is what an Authenticate function returns for a request
// that proves no identity: the console answers 401.
var ErrUnauthenticated = errors.New("console: not authenticated")

// Options configure a Console.
type Options struct {
	// Runtime acts: its Decide, Answer and Send, and its client's Cancel
	// and Resume, under the identity's name. Its Authorizer decides who
	// may decide or answer, and, if it is an agent.RunAuthorizer, who may
	// cancel, resume or send (Runtime.AuthorizeRun). It need not run
	// workers. Required.
	Runtime *agent.Runtime
	// View reads runs to show them; give it a codec that shows what it
	// cannot decode as "(encrypted: ...)" (as cmd/cairn's does): the
	// console shows such a payload as encrypted. Default: Runtime.
	View *agent.Runtime
	// ViewFor, if set, returns the runtime that reads runs for an
	// identity, in place of View: one whose codec holds only the keys
	// that person may read with. Runs are listed with View; what they
	// hold (histories, requests, live events) is read with ViewFor's.
	ViewFor func(Identity) *agent.Runtime
	// Store is the Runtime's store, if the console may use its optional
	// capabilities: one that is a backend.RunCounter (durable/redis,
	// durable/inmem) counts the runs by status for the run list more
	// cheaply than a read of every run's record.
	Store backend.Store
	// Authenticate returns who makes a request, or an error (wrap
	// ErrUnauthenticated) to refuse it with 401. It must be safe for
	// concurrent use. Default: the token (Token, TokenUser).
	Authenticate func(r *http.Request) (Identity, error)
	// Token is the secret of the default authentication: /login?token=T
	// sets a cookie that holds it, and "Authorization: Bearer T" is taken
	// too. Default: a random one (see Console.Token).
	Token string
	// TokenUser is the identity of whoever holds Token. Empty: the
	// console can be read, not acted on.
	TokenUser string
	// TraceURL links a run's trace id to a tracing backend: "{trace_id}"
	// is replaced, e.g. "http://localhost:16686/trace/{trace_id}" for
	// Jaeger. Empty: the trace id is shown as text.
	TraceURL string
	// PageSize is how many runs or requests a page lists. Default: 50.
	PageSize int
	// TimelineRows is how many of a history's latest events a run's page
	// shows, unless asked for all (?events=all). Default: 1,000.
	TimelineRows int
	// CountsMaxAge is how old the counts of runs by status may be before
	// they are counted again, in the background. Default: 3 s.
	CountsMaxAge time.Duration
	// Logger logs what goes wrong while serving. Default: slog.Default().
	Logger *slog.Logger
}

// Console is the web console, an http.Handler. It is safe for concurrent
// use.
type Console struct {
	rt, view *agent.Runtime
	opts     Options
	auth     func(*http.Request) (Identity, error)
	secret   []byte // keys CSRF tokens
	pages    map[string]*template.Template
	mux      *http.ServeMux
	log      *slog.Logger
	counts   countsCache
	// streams counts the live streams being served (Close waits for them).
	streams sync.WaitGroup
}

// sessionCookie is the cookie that holds the default authentication's
// token.
const sessionCookie = "cairn_console"

// New returns a console.
func New(opts Options) (*Console, error) {
	if opts.Runtime == nil {
		return nil, errors.New("console: Options.Runtime is required")
	}
	c := &Console{rt: opts.Runtime, view: cmp.Or(opts.View, opts.Runtime), opts: opts, log: opts.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.opts.PageSize <= 0 {
		c.opts.PageSize = 50
	}
	if c.opts.TimelineRows <= 0 {
		c.opts.TimelineRows = 1000
	}
	if c.opts.CountsMaxAge <= 0 {
		c.opts.CountsMaxAge = 3 * time.Second
	}
	c.secret = make([]byte, 32)
	if _, err := rand.Read(c.secret); err != nil {
		return nil, fmt.Errorf("console: secret: %w", err)
	}
	c.auth = opts.Authenticate
	if c.auth == nil {
		if c.opts.Token == "" {
			b := make([]byte, 24)
			if _, err := rand.Read(b); err != nil {
				return nil, fmt.Errorf("console: token: %w", err)
			}
			c.opts.Token = base64.RawURLEncoding.EncodeToString(b)
		}
		c.auth = c.tokenAuth
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	c.routes()
	return c, nil
}

// Token returns the token of the default authentication ("" when
// Options.Authenticate is set).
func (c *Console) Token() string {
	if c.opts.Authenticate != nil {
		return ""
	}
	return c.opts.Token
}

// LoginURL returns the URL that signs a browser in with the token, for a
// console served at base ("http://127.0.0.1:7070"). /login also takes
// next=PATH, a page of the console to go to once signed in.
func (c *Console) LoginURL(base string) string {
	return strings.TrimSuffix(base, "/") + "/login?token=" + c.Token()
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// Close waits for the live streams to end; cancel their requests' contexts
// (shut the server down) first.
func (c *Console) Close() { c.streams.Wait() }

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets/static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /login", c.login)
	m.Handle("GET /{$}", c.read(func(w http.ResponseWriter, r *http.Request, _ Identity) {
		http.Redirect(w, r, "/runs", http.StatusSeeOther)
	}))
	m.Handle("GET /runs", c.read(c.runsPage))
	m.Handle("GET /runs/{run}", c.read(c.runPage))
	m.Handle("GET /runs/{run}/events", c.read(c.runEvents))
	m.Handle("GET /inbox", c.read(c.inboxPage))
	m.Handle("POST /runs/{run}/calls/{call}/decide", c.act(c.decide))
	m.Handle("POST /runs/{run}/calls/{call}/answer", c.act(c.answer))
	m.Handle("POST /runs/{run}/cancel", c.act(c.cancel))
	m.Handle("POST /runs/{run}/resume", c.act(c.resume))
	m.Handle("POST /runs/{run}/send", c.act(c.send))
	c.mux = m
}

// handler is a page or an action, given who asks.
type handler func(w http.ResponseWriter, r *http.Request, id Identity)

// read authenticates a request that reads.
func (c *Console) read(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := c.auth(r)
		if err != nil {
			c.refuse(w, r, http.StatusUnauthorized, "Not signed in: open the link that cairn ui printed, with its token.")
			return
		}
		setSecurityHeaders(w)
		h(w, r, id)
	})
}

// act authenticates a request that changes state: it needs a named
// identity, the request's CSRF token, and no sign of another origin.
func (c *Console) act(h handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := c.auth(r)
		if err != nil {
			c.refuse(w, r, http.StatusUnauthorized, "Not signed in: open the link that cairn ui printed, with its token.")
			return
		}
		setSecurityHeaders(w)
		if id.Name == "" {
			c.refuse(w, r, http.StatusForbidden, "You are signed in without a name: nobody may act without an identity.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		token := cmp.Or(r.Header.Get("X-CSRF-Token"), r.PostFormValue("csrf"))
		if !hmac.Equal([]byte(token), []byte(c.csrf(id))) {
			c.refuse(w, r, http.StatusForbidden, "The request has no valid CSRF token: reload the page and try again.")
			return
		}
		h(w, r, id)
	}))
}

// viewOf returns the runtime that reads payloads for id.
func (c *Console) viewOf(id Identity) *agent.Runtime {
	if c.opts.ViewFor != nil {
		if v := c.opts.ViewFor(id); v != nil {
			return v
		}
	}
	return c.view
}

// csrf is the CSRF token of an identity: a MAC of its name under the
// console's secret, so it needs no server-side state and dies with the
// process.
func (c *Console) csrf(id Identity) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte("csrf\x00" + id.Name))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// tokenAuth is the default authentication.
func (c *Console) tokenAuth(r *http.Request) (Identity, error) {
	got := ""
	if ck, err := r.Cookie(sessionCookie); err == nil {
		got = ck.Value
	} else if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		got = h
	}
	if got == "" || !hmac.Equal([]byte(got), []byte(c.opts.Token)) {
		return Identity{}, ErrUnauthenticated
	}
	return Identity{Name: c.opts.TokenUser}, nil
}

// login exchanges the token in the URL for a cookie, and sends the browser
// on without the token in its address bar.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	if c.opts.Authenticate != nil {
		http.Redirect(w, r, "/runs", http.StatusSeeOther)
		return
	}
	token := r.URL.Query().Get("token")
	if token == "" || !hmac.Equal([]byte(token), []byte(c.opts.Token)) {
		c.refuse(w, r, http.StatusUnauthorized, "That token is not this console's: open the link that cairn ui printed.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, localPath(r.URL.Query().Get("next"), "/runs"), http.StatusSeeOther)
}

// localPath returns p if it is a path of this site ("/runs/x"), else def:
// a redirect never leaves the console.
func localPath(p, def string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(p, "//") ||
		strings.Contains(p, "\\") {
		return def
	}
	return u.RequestURI()
}

// setSecurityHeaders forbids what the pages never do: scripts and styles
// from elsewhere or inline, framing.
func setSecurityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// wantsJSON reports whether the page's script sent the request (it asks
// for JSON); a plain form post gets a redirect.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// refuse answers a request it will not serve.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if wantsJSON(r) {
		writeJSON(w, code, map[string]any{"ok": false, "error": msg})
		return
	}
	setSecurityHeaders(w)
	c.render(w, r, code, "error", Identity{}, page{Title: http.StatusText(code), Error: msg})
}

// fail reports an error of the store or the runtime.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, id Identity, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, context.Canceled):
		return
	case isNotFound(err):
		code = http.StatusNotFound
	default:
		c.log.Error("console", "path", r.URL.Path, "err", err)
	}
	if wantsJSON(r) {
		writeJSON(w, code, map[string]any{"ok": false, "error": err.Error()})
		return
	}
	c.render(w, r, code, "error", id, page{Title: http.StatusText(code), Error: err.Error()})
}
