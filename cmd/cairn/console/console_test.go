package console_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/console"
	"github.com/cairn-dev/cairn/durable/backend"
)

// TestSignIn: nothing is served without the token; /login exchanges it
// for a cookie and leaves the token out of the address; a bearer token
// works too.
func TestSignIn(t *testing.T) {
	w := newWorld(t, nil, console.Options{Token: "s3cret"})
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/", "/runs", "/inbox", "/runs/x", "/runs/x/events"} {
		code, body := get(t, plain, w.srv.URL+path)
		assert.Equal(t, http.StatusUnauthorized, code, "GET %s without a token", path)
		assert.Contains(t, body, "Not signed in", "GET %s", path)
	}
	code, _ := get(t, plain, w.srv.URL+"/login?token=wrong")
	assert.Equal(t, http.StatusUnauthorized, code, "login with a wrong token")

	res, err := plain.Get(w.srv.URL + "/login?token=s3cret")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/runs", res.Header.Get("Location"), "the token is not kept in the address")
	require.Len(t, res.Cookies(), 1)
	ck := res.Cookies()[0]
	assert.True(t, ck.HttpOnly, "cookie HttpOnly")
	assert.Equal(t, http.SameSiteStrictMode, ck.SameSite, "cookie SameSite")

	for next, want := range map[string]string{"/runs/x?a=1": "/runs/x?a=1", "//evil.example/": "/runs",
		"https://evil.example/": "/runs", "/\\evil.example": "/runs", "runs": "/runs"} {
		res, err := plain.Get(w.srv.URL + "/login?token=s3cret&next=" + url.QueryEscape(next))
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, want, res.Header.Get("Location"), "login with next=%s", next)
	}

	code, body := get(t, w.client(), w.srv.URL+"/runs")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `Signed in as <b id="me">alice</b>`)
	req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/runs", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err = plain.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "bearer token")
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'", "CSP")
}

// TestRunList: newest first, counts by status, filters by status and
// agent, search by id, pages.
func TestRunList(t *testing.T) {
	w := newWorld(t, nil, console.Options{PageSize: 2, CountsMaxAge: time.Nanosecond})
	w.start("parrot", "p-1", backend.StatusCompleted)
	w.start("support", "s-1", backend.StatusAwaitingApproval)
	w.start("clerk", "c-1", backend.StatusWaiting)
	c := w.client()

	code, body := get(t, c, w.srv.URL+"/runs")
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, []string{"c-1", "s-1"}, runIDs(body), "page 1, newest first")
	assert.Contains(t, body, "<b>3</b> all")
	assert.Contains(t, body, "<b>1</b> awaiting_approval")
	assert.Contains(t, body, "<b>1</b> completed")
	assert.Contains(t, body, `href="/runs?page=2"`, "a link to the next page")
	_, body = get(t, c, w.srv.URL+"/runs?page=2")
	assert.Equal(t, []string{"p-1"}, runIDs(body), "page 2")
	assert.NotContains(t, body, "page=3")

	_, body = get(t, c, w.srv.URL+"/runs?status=awaiting_approval")
	assert.Equal(t, []string{"s-1"}, runIDs(body), "by status")
	_, body = get(t, c, w.srv.URL+"/runs?workflow=parrot")
	assert.Equal(t, []string{"p-1"}, runIDs(body), "by agent")
	code, _ = get(t, c, w.srv.URL+"/runs?status=bogus")
	assert.Equal(t, http.StatusBadRequest, code, "a status that does not exist")

	res, err := c.Get(w.srv.URL + "/runs?q=s-1")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, "/runs/s-1", res.Header.Get("Location"), "search by an id that exists")
	_, body = get(t, c, w.srv.URL+"/runs?q=nope")
	assert.Contains(t, body, `No run has the id &#34;nope&#34;.`)
}

func runIDs(body string) []string {
	var ids []string
	for _, part := range strings.Split(body, `class="run-link" href="/runs/`)[1:] {
		id, _, _ := strings.Cut(part, `"`)
		ids = append(ids, id)
	}
	return ids
}

// TestRunPage: a run awaiting approval shows what it waits for, with the
// form, its conversation (messages, tool calls with arguments and
// results), its timeline with routine events folded, its trace linked.
func TestRunPage(t *testing.T) {
	w := newWorld(t, nil, console.Options{TraceURL: "http://jaeger.example:16686/trace/{trace_id}"})
	w.start("support", "s-1", backend.StatusAwaitingApproval)
	info, err := w.rt.Client().Describe(context.Background(), "s-1")
	require.NoError(t, err)
	code, body := get(t, w.client(), w.srv.URL+"/runs/s-1")
	require.Equal(t, http.StatusOK, code, body)
	for _, want := range []string{
		`<span id="run-status" class="status st-awaiting_approval">awaiting_approval</span>`,
		`action="/runs/s-1/calls/call_1_0/decide"`,
		`wants to call <code>refund</code>`,
		`{&#34;order_id&#34;:&#34;A-1001&#34;,&#34;cents&#34;:12000}`,                  // the arguments
		`order A-1001, 120 euros, delivered cold`,                                      // a tool's result
		`My order A-1001 came cold; refund my 120 euros.`,                              // the user's message
		`<b>approval requested</b>`,                                                    // on the call
		`show routine events (3: activities scheduled`,                                 // folded
		`href="http://jaeger.example:16686/trace/` + info.Trace.TraceID.String() + `"`, // the trace
		`data-stream="/runs/s-1/events?from=`,
	} {
		assert.Contains(t, body, want)
	}
	code, _ = get(t, w.client(), w.srv.URL+"/runs/nope")
	assert.Equal(t, http.StatusNotFound, code, "a run that does not exist")
}

// TestDecide: an approval needs the CSRF token and a name; a rejection a
// reason; the decision goes through the Authorizer and is recorded under
// the identity; the run goes on.
func TestDecide(t *testing.T) {
	w := newWorld(t, nil, console.Options{})
	w.start("support", "s-1", backend.StatusAwaitingApproval)
	w.start("support", "s-2", backend.StatusAwaitingApproval)
	c := w.client()
	token := csrfOf(t, c, w.srv.URL+"/runs/s-1")
	decide := w.srv.URL + "/runs/s-1/calls/call_1_0/decide"

	code, out := post(t, c, decide, url.Values{"verdict": {"approve"}})
	assert.Equal(t, http.StatusForbidden, code, "no CSRF token: %v", out)
	code, out = post(t, c, decide, url.Values{"verdict": {"approve"}}, "X-CSRF-Token", "forged")
	assert.Equal(t, http.StatusForbidden, code, "a wrong CSRF token: %v", out)
	code, out = post(t, c, decide, url.Values{"verdict": {"approve"}}, "X-CSRF-Token", token, "Origin", "http://evil.example")
	assert.Equal(t, http.StatusForbidden, code, "another origin: %v", out)
	code, out = post(t, c, decide, url.Values{"verdict": {"approve"}}, "X-CSRF-Token", token, "Sec-Fetch-Site", "cross-site")
	assert.Equal(t, http.StatusForbidden, code, "a cross-site request: %v", out)
	code, out = post(t, c, decide, url.Values{"verdict": {"reject"}, "reason": {"  "}}, "X-CSRF-Token", token)
	assert.Equal(t, http.StatusBadRequest, code, "a rejection without a reason: %v", out)
	assert.Zero(t, w.refunds.Load())

	code, out = post(t, c, decide, url.Values{"verdict": {"approve"}, "reason": {"receipt checked"}}, "X-CSRF-Token", token)
	require.Equal(t, http.StatusOK, code, "approve: %v", out)
	assert.Equal(t, true, out["ok"])
	w.waitStatus("s-1", backend.StatusCompleted)
	assert.EqualValues(t, 1, w.refunds.Load(), "refunds")
	d := w.records("s-1", "approval_decided")
	require.Len(t, d, 1)
	assert.Equal(t, "alice", d[0]["by"])
	assert.Equal(t, "receipt checked", d[0]["reason"])
	code, out = post(t, c, decide, url.Values{"verdict": {"approve"}}, "X-CSRF-Token", token)
	assert.Equal(t, http.StatusConflict, code, "decided already: %v", out)

	// A plain form post (no script): the token as a field, a redirect
	// back with a notice.
	form := url.Values{"verdict": {"reject"}, "reason": {"duplicate"}, "csrf": {token}, "back": {"/inbox"}}
	res, err := c.PostForm(w.srv.URL+"/runs/s-2/calls/call_1_0/decide", form)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.True(t, strings.HasPrefix(res.Header.Get("Location"), "/inbox?notice=Rejection"), res.Header.Get("Location"))
	w.waitStatus("s-2", backend.StatusCompleted)
	assert.EqualValues(t, 1, w.refunds.Load(), "refunds after a rejection")
	_, body := get(t, c, w.srv.URL+"/runs/s-2")
	assert.Contains(t, body, `<b>rejected</b> by <span class="by">alice</span>: <span class="reason">duplicate</span>`)
}

// TestDecideNotAuthorized: someone the Authorizer refuses is told so, and
// nothing is sent; someone without a name cannot act at all.
func TestDecideNotAuthorized(t *testing.T) {
	for _, user := range []string{"mallory", ""} {
		t.Run("user="+user, func(t *testing.T) {
			auth := func(r *http.Request) (console.Identity, error) { return console.Identity{Name: user}, nil }
			w := newWorld(t, nil, console.Options{Authenticate: auth})
			w.start("support", "s-1", backend.StatusAwaitingApproval)
			c := &http.Client{}
			code, body := get(t, c, w.srv.URL+"/runs/s-1")
			require.Equal(t, http.StatusOK, code)
			m := csrfMeta.FindStringSubmatch(body)
			require.NotNil(t, m)
			if user == "" {
				assert.Empty(t, m[1], "a CSRF token for nobody")
				assert.Contains(t, body, "Read only")
				assert.NotContains(t, body, "/decide", "a form for nobody")
			}
			code, out := post(t, c, w.srv.URL+"/runs/s-1/calls/call_1_0/decide", url.Values{"verdict": {"approve"}}, "X-CSRF-Token", m[1])
			assert.Equal(t, http.StatusForbidden, code, "%v", out)
			if user != "" {
				assert.Contains(t, out["error"], `"mallory" may not decide refunds`)
			}
			p, err := w.rt.Pending(context.Background(), agent.PendingFilter{RunID: "s-1"})
			require.NoError(t, err)
			assert.Len(t, p, 1, "still pending")
		})
	}
}

// TestInboxAnswer: the inbox lists approvals and questions across runs,
// by kind; a question is answered from it.
func TestInboxAnswer(t *testing.T) {
	w := newWorld(t, nil, console.Options{})
	w.start("support", "s-1", backend.StatusAwaitingApproval)
	w.start("clerk", "c-1", backend.StatusWaiting)
	c := w.client()
	code, body := get(t, c, w.srv.URL+"/inbox")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `<b id="n-approvals">1</b>`)
	assert.Contains(t, body, `<b id="n-questions">1</b>`)
	assert.Contains(t, body, `<blockquote class="question">Which size, M or L?</blockquote>`)
	assert.Contains(t, body, `action="/runs/s-1/calls/call_1_0/decide"`)
	_, body = get(t, c, w.srv.URL+"/inbox?kind=question")
	assert.NotContains(t, body, `/decide"`, "questions only")

	token := csrfOf(t, c, w.srv.URL+"/inbox")
	code, out := post(t, c, w.srv.URL+"/runs/c-1/calls/call_0_0/answer", url.Values{"text": {"L, please"}}, "X-CSRF-Token", token)
	require.Equal(t, http.StatusOK, code, "%v", out)
	w.waitStatus("c-1", backend.StatusCompleted)
	a := w.records("c-1", "question_answered")
	require.Len(t, a, 1)
	assert.Equal(t, "alice", a[0]["by"])
	assert.Equal(t, "L, please", a[0]["text"])
}

// TestInboxToolQuestion: a tool's question shows its schema; an answer
// that breaks it is refused with why; declining is sent as declining.
func TestInboxToolQuestion(t *testing.T) {
	w := newWorld(t, nil, console.Options{})
	w.start("seater", "q-1", backend.StatusWaiting)
	c := w.client()
	code, body := get(t, c, w.srv.URL+"/inbox?kind=question")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `<blockquote class="question">Aisle or window?</blockquote>`)
	assert.Contains(t, body, `The tool <code>seat</code> asks`)
	assert.Contains(t, body, `{&#34;type&#34;:&#34;object&#34;`)
	assert.Contains(t, body, `name="action" value="decline"`)

	token := csrfOf(t, c, w.srv.URL+"/inbox")
	code, out := post(t, c, w.srv.URL+"/runs/q-1/calls/call_0_0/answer", url.Values{"text": {`{"seat":"roof"}`}}, "X-CSRF-Token", token)
	assert.Equal(t, http.StatusBadRequest, code, "%v", out)
	assert.Contains(t, out["error"], "does not match the requested schema", "%v", out)
	code, out = post(t, c, w.srv.URL+"/runs/q-1/calls/call_0_0/answer", url.Values{"action": {"decline"}}, "X-CSRF-Token", token)
	require.Equal(t, http.StatusOK, code, "%v", out)
	w.waitStatus("q-1", backend.StatusCompleted)
	a := w.records("q-1", "question_answered")
	require.Len(t, a, 1)
	assert.Equal(t, "alice", a[0]["by"])
	assert.Equal(t, "decline", a[0]["action"])
}

// TestEscaped: what the model wrote is text, never markup.
func TestEscaped(t *testing.T) {
	w := newWorld(t, nil, console.Options{})
	w.start("parrot", "p-1", backend.StatusCompleted)
	_, body := get(t, w.client(), w.srv.URL+"/runs/p-1")
	assert.Contains(t, body, `Here: &lt;script&gt;window.pwned=1&lt;/script&gt;&lt;img src=x onerror=&#34;window.pwned=2&#34;&gt; done`)
	assert.NotContains(t, body, "<script>window")
	assert.NotContains(t, body, "<img src=x")
}

// TestCancel: a run is canceled from its page, as the identity.
func TestCancel(t *testing.T) {
	w := newWorld(t, nil, console.Options{})
	w.start("clerk", "c-1", backend.StatusWaiting)
	c := w.client()
	token := csrfOf(t, c, w.srv.URL+"/runs/c-1")
	code, out := post(t, c, w.srv.URL+"/runs/c-1/cancel", nil, "X-CSRF-Token", token)
	require.Equal(t, http.StatusOK, code, "%v", out)
	w.waitStatus("c-1", backend.StatusCanceled)
	code, out = post(t, c, w.srv.URL+"/runs/c-1/resume", nil, "X-CSRF-Token", token)
	assert.Equal(t, http.StatusConflict, code, "resume a run that is not parked: %v", out)
}

// runOwners is an Authorizer that also decides who acts on runs (an
// agent.RunAuthorizer): nobody may cancel a run from the console.
type runOwners struct{}

func (runOwners) Authorize(_ context.Context, _ agent.PendingCall, by string) error { return nil }

func (runOwners) AuthorizeRun(_ context.Context, run backend.RunInfo, action agent.RunAction, by string) error {
	if action == agent.RunCancel {
		return fmt.Errorf("%s runs are not canceled from the console", run.Workflow)
	}
	return nil
}

// TestRunActionsAuthorized: with an Authorizer that is an
// agent.RunAuthorizer, the console asks it before it cancels, and a
// refusal is a 403 that changes nothing.
func TestRunActionsAuthorized(t *testing.T) {
	w := newWorldWith(t, nil, agent.Options{Authorizer: runOwners{}}, console.Options{})
	w.start("clerk", "c-2", backend.StatusWaiting)
	c := w.client()
	token := csrfOf(t, c, w.srv.URL+"/runs/c-2")
	code, out := post(t, c, w.srv.URL+"/runs/c-2/cancel", nil, "X-CSRF-Token", token)
	assert.Equal(t, http.StatusForbidden, code, "%v", out)
	assert.Contains(t, out["error"], "clerk runs are not canceled from the console")
	info, err := w.rt.Client().Describe(context.Background(), "c-2")
	require.NoError(t, err)
	assert.Equal(t, backend.StatusWaiting, info.Status, "the refused cancel changed the run")
	inbox, err := w.rt.Client().History(context.Background(), "c-2")
	require.NoError(t, err)
	for _, e := range inbox {
		assert.NotEqual(t, backend.EventCancelRequested, e.Type, "a cancellation reached the run")
	}
}

// TestLiveStream: the stream sends the run's changes and live events with
// ids, ends with the run, and a reconnect with Last-Event-ID goes on from
// there without repeating anything.
func TestLiveStream(t *testing.T) {
	w := newWorld(t, nil, console.Options{})
	w.start("support", "s-1", backend.StatusAwaitingApproval)
	info, err := w.rt.Client().Describe(context.Background(), "s-1")
	require.NoError(t, err)
	c := w.client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream := openStream(t, ctx, c, w.srv.URL+"/runs/s-1/events?from="+strconv.FormatInt(info.Version, 10), "")
	require.NoError(t, w.rt.Decide(ctx, "s-1", agent.Decision{CallID: "call_1_0", Approved: true, By: "alice"}))
	events := stream.until(t, "end")
	var kinds []string
	lastID := ""
	for _, e := range events {
		kinds = append(kinds, e.event)
		if e.id != "" {
			lastID = e.id
		}
	}
	assert.Contains(t, kinds, "history")
	assert.Contains(t, kinds, "live")
	assert.Equal(t, "end", kinds[len(kinds)-1])
	assert.Contains(t, joinData(events, "live"), `"type":"approval_decided"`)
	assert.Contains(t, joinData(events, "live"), `"type":"run_finished"`)

	// Again from the last id: the run has ended, nothing is repeated.
	again := openStream(t, ctx, c, w.srv.URL+"/runs/s-1/events", lastID).until(t, "end")
	require.Len(t, again, 1, "after a reconnect: %+v", again)
	assert.Equal(t, "end", again[0].event)
}

type sseEvent struct{ id, event, data string }

type sseStream struct {
	sc *bufio.Scanner
}

func openStream(t *testing.T, ctx context.Context, c *http.Client, u, lastID string) *sseStream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	require.NoError(t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { res.Body.Close() })
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	return &sseStream{sc: bufio.NewScanner(res.Body)}
}

// until reads events until one of type last.
func (s *sseStream) until(t *testing.T, last string) []sseEvent {
	t.Helper()
	var out []sseEvent
	var e sseEvent
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if e.event != "" {
				out = append(out, e)
				if e.event == last {
					return out
				}
			}
			e = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			e.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			e.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			e.data = line[6:]
		}
	}
	t.Fatalf("the stream ended before %s: %v (%+v)", last, s.sc.Err(), out)
	return nil
}

func joinData(events []sseEvent, kind string) string {
	var b strings.Builder
	for _, e := range events {
		if e.event == kind {
			b.WriteString(e.data + "\n")
		}
	}
	return b.String()
}
