package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/console"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
)

// The agents of the tests:
//
//	support  looks an order up, then asks for a refund, which needs
//	         approval, then says what happened
//	clerk    asks a person a question (ask_human), then answers
//	parrot   answers with text that is HTML with a script and an image
//	         whose onerror runs script
//	refunder asks for a refund in its first turn
//	chat     answers each message of a conversation
//	seater   calls a tool that asks a person to fill a form (as an MCP
//	         server's elicitation does)
//
// and a workflow, flow, that runs an activity and waits for a signal.
const (
	finalAnswer = "Refunded 120 euros on A-1001."
	hostile     = `Here: <script>window.pwned=1</script><img src=x onerror="window.pwned=2"> done`
)

type refundArgs struct {
	Order string `json:"order_id"`
	Cents int    `json:"cents"`
}

type orderArgs struct {
	Order string `json:"order_id"`
}

// world is a store with agents, a worker, and a console served over HTTP.
type world struct {
	t       testing.TB
	store   backend.Store
	rt      *agent.Runtime
	console *console.Console
	srv     *httptest.Server
	token   string
	refunds atomic.Int32
	agents  map[string]*agent.Agent
	// drift changes the code of the workflow flow: its runs that replay
	// with it set diverge from their histories, and park.
	drift atomic.Bool
	flow  *durable.Workflow[string, string]
}

// flowGo is the signal that flow waits for.
var flowGo = durable.NewSignal[string]("go")

// managers is the tests' Authorizer: only alice and managers decide.
var managers = agent.AuthorizerFunc(func(_ context.Context, _ agent.PendingCall, by string) error {
	if by == "alice" || strings.HasSuffix(by, "@managers") {
		return nil
	}
	return fmt.Errorf("%q may not decide refunds", by)
})

func newWorld(t testing.TB, store backend.Store, opts console.Options) *world {
	t.Helper()
	return newWorldWith(t, store, agent.Options{Authorizer: managers}, opts)
}

// newWorldWith is newWorld with the options of the workers' runtime,
// which is also the console's Runtime.
func newWorldWith(t testing.TB, store backend.Store, rtOpts agent.Options, opts console.Options) *world {
	t.Helper()
	if store == nil {
		store = inmem.New()
	}
	w := &world{t: t, store: store}
	refund := tools.MustNew("refund", "Refund an order.", func(ctx context.Context, a refundArgs) (string, error) {
		w.refunds.Add(1)
		return fmt.Sprintf("refunded %d cents on %s", a.Cents, a.Order), nil
	}, tools.RequireApproval())
	lookup := tools.MustNew("lookup_order", "Find an order.", func(ctx context.Context, a orderArgs) (string, error) {
		return "order " + a.Order + ", 120 euros, delivered cold", nil
	})
	set, err := tools.NewSet(refund, lookup)
	require.NoError(t, err)
	seat := tools.MustNew("seat", "Choose a seat.", func(ctx context.Context, _ struct{}) (string, error) {
		in, _ := tools.InputFrom(ctx)
		if r, ok := in.Response("seat"); ok {
			return r.Action + " " + string(r.Content), nil
		}
		return "", tools.NeedInput("", tools.InputRequest{ID: "seat", Kind: tools.InputElicitation, Message: "Aisle or window?",
			Schema: json.RawMessage(`{"type":"object","properties":{"seat":{"enum":["aisle","window"]}},"required":["seat"]}`)})
	})
	seats, err := tools.NewSet(seat)
	require.NoError(t, err)
	call := func(name, args string) providers.Response {
		return providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{{Name: name, Arguments: args}}}}
	}
	say := func(text string) providers.Response {
		return providers.Response{Message: providers.Message{Content: text}}
	}
	w.agents = map[string]*agent.Agent{
		"support": {Name: "support", Model: scripted.New(call("lookup_order", `{"order_id":"A-1001"}`),
			call("refund", `{"order_id":"A-1001","cents":12000}`), say(finalAnswer)), Tools: set},
		"clerk":  {Name: "clerk", Model: scripted.New(call("ask_human", `{"question":"Which size, M or L?"}`), say("Ordering size L.")), AskHuman: true},
		"parrot": {Name: "parrot", Model: scripted.New(say(hostile))},
		"seater": {Name: "seater", Model: scripted.New(call("seat", `{}`), say("Seated.")), Tools: seats},
		"chat": {Name: "chat", Model: scripted.Func(func(_ context.Context, req providers.Request) (providers.Response, error) {
			return say("You said: " + req.Messages[len(req.Messages)-1].Content), nil
		}), ConversationLimit: 1000},
		// refunder asks for a refund at once (the benchmarks' runs).
		"refunder": {Name: "refunder", Model: scripted.New(call("refund", `{"order_id":"A-7","cents":500}`), say(finalAnswer)), Tools: set},
	}
	if rtOpts.Logger == nil {
		rtOpts.Logger = slog.New(slog.DiscardHandler)
	}
	w.rt = agent.NewRuntime(store, rtOpts)
	for _, a := range w.agents {
		require.NoError(t, w.rt.Register(a))
	}
	step := func(name string) *durable.Activity[string, string] {
		return durable.NewActivity(name, func(ctx context.Context, in string) (string, error) { return in + name, nil })
	}
	a, b := step("a"), step("b")
	flow := durable.NewWorkflow("flow", func(ctx durable.Context, in string) (string, error) {
		first := a
		if w.drift.Load() {
			first = b // a change made without a durable.Version guard
		}
		out, err := durable.Execute(ctx, first, in)
		if err != nil {
			return "", err
		}
		who, err := flowGo.Receive(ctx)
		return out + " by " + who, err
	})
	w.flow = flow
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	worker := w.rt.NewWorker(durable.WorkerOptions{})
	worker.Register(flow)
	go func() {
		defer close(done)
		_ = worker.Run(ctx)
	}()
	opts.Runtime = w.rt
	if opts.Store == nil {
		opts.Store = store
	}
	if opts.Authenticate == nil && opts.TokenUser == "" {
		opts.TokenUser = "alice"
	}
	w.console, err = console.New(opts)
	require.NoError(t, err)
	w.token = w.console.Token()
	w.srv = httptest.NewServer(w.console)
	t.Cleanup(func() {
		w.srv.CloseClientConnections()
		w.srv.Close()
		stop()
		<-done
		w.console.Close()
	})
	return w
}

// start starts a run of agent name, and waits until its status is want.
func (w *world) start(name, runID string, want backend.Status) {
	w.t.Helper()
	_, err := w.rt.Start(context.Background(), w.agents[name], runID, agent.Input{Message: "My order A-1001 came cold; refund my 120 euros."})
	require.NoError(w.t, err)
	w.waitStatus(runID, want)
}

func (w *world) waitStatus(runID string, want backend.Status) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		info, err := w.rt.Client().Describe(ctx, runID)
		require.NoError(w.t, err)
		if info.Status == want {
			return
		}
		if err := w.rt.Client().WaitChange(ctx, info); err != nil {
			w.t.Fatalf("run %s: status %s, want %s: %v", runID, info.Status, want, err)
		}
	}
}

// client is an HTTP client signed in with the token (a cookie jar that
// went through /login), which does not follow redirects.
func (w *world) client() *http.Client {
	w.t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(w.srv.URL + "/login?token=" + url.QueryEscape(w.token))
	require.NoError(w.t, err)
	res.Body.Close()
	require.Equal(w.t, http.StatusSeeOther, res.StatusCode, "login")
	var cookie *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "cairn_console" {
			cookie = ck
		}
	}
	require.NotNil(w.t, cookie, "the login's cookie")
	c.Transport = cookieTransport{cookie}
	return c
}

type cookieTransport struct{ c *http.Cookie }

func (t cookieTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.AddCookie(t.c)
	return http.DefaultTransport.RoundTrip(r)
}

// get reads a page and returns its status and body.
func get(t testing.TB, c *http.Client, u string) (int, string) {
	t.Helper()
	res, err := c.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(body)
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf" content="([^"]*)">`)

// csrfOf returns the CSRF token of the page at u.
func csrfOf(t testing.TB, c *http.Client, u string) string {
	t.Helper()
	code, body := get(t, c, u)
	require.Equal(t, http.StatusOK, code, "GET %s: %s", u, body)
	m := csrfMeta.FindStringSubmatch(body)
	require.NotNil(t, m, "no csrf meta in %s", u)
	return m[1]
}

// post sends a form as the page's script does (JSON back), with the
// headers given ("X-CSRF-Token", "Origin", ...), and returns the status
// and the decoded answer.
func post(t testing.TB, c *http.Client, u string, form url.Values, headers ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	body, _ := io.ReadAll(res.Body)
	if json.Unmarshal(body, &out) != nil {
		out = map[string]any{"body": string(body)}
	}
	return res.StatusCode, out
}

// records returns the payloads of the side effects named name in a run's
// history.
func (w *world) records(runID, name string) []map[string]any {
	w.t.Helper()
	h, err := w.rt.Client().History(context.Background(), runID)
	require.NoError(w.t, err)
	var out []map[string]any
	for _, e := range h {
		if e.Type == backend.EventSideEffect && e.Name == name {
			var m map[string]any
			require.NoError(w.t, json.Unmarshal(e.Payload, &m))
			out = append(out, m)
		}
	}
	return out
}
