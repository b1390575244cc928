package cli_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	webconsole "github.com/cairn-dev/cairn/cmd/cairn/console"
	"github.com/cairn-dev/cairn/durable/backend"
)

// TestUI: cairn ui serves the console on the store, with the App's
// Authorizer and Authenticate: someone the authorizer refuses cannot
// approve, someone it allows can, and the run goes on.
func TestUI(t *testing.T) {
	managersOnly := agent.AuthorizerFunc(func(_ context.Context, _ agent.PendingCall, by string) error {
		if by != "alice@example.com" {
			return errors.New("only managers approve refunds")
		}
		return nil
	})
	w := newWorldWith(t, agent.Options{Authorizer: managersOnly})
	w.app.Authorizer = managersOnly
	w.app.Authenticate = func(r *http.Request) (webconsole.Identity, error) {
		if u := r.Header.Get("X-User"); u != "" {
			return webconsole.Identity{Name: u}, nil
		}
		return webconsole.Identity{}, webconsole.ErrUnauthenticated
	}
	w.start(supportAgent(), "refund-1", agent.Input{Message: "Refund my 120 euros."}, backend.StatusAwaitingApproval)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ui := w.watchAsyncCtx(ctx, "ui", "--listen", "127.0.0.1:0")
	ui.waitOutput("Console at ")
	m := regexp.MustCompile(`Console at (http://\S+)/`).FindStringSubmatch(ui.out.String())
	require.NotNil(t, m, "the console's address in %q", ui.out.String())
	base := m[1]

	as := func(user, method, path string, form url.Values) (int, string) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		if user != "" {
			req.Header.Set("X-User", user)
		}
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	code, _ := as("", http.MethodGet, "/inbox", nil)
	assert.Equal(t, http.StatusUnauthorized, code, "nobody")
	csrf := regexp.MustCompile(`<meta name="csrf" content="([^"]+)">`)
	for _, user := range []string{"bob@example.com", "alice@example.com"} {
		code, body := as(user, http.MethodGet, "/inbox", nil)
		require.Equal(t, http.StatusOK, code, body)
		assert.Contains(t, body, `action="/runs/refund-1/calls/call_1_0/decide"`)
		token := csrf.FindStringSubmatch(body)
		require.NotNil(t, token)
		code, body = as(user, http.MethodPost, "/runs/refund-1/calls/call_1_0/decide",
			url.Values{"verdict": {"approve"}, "csrf": {token[1]}})
		if user == "bob@example.com" {
			assert.Equal(t, http.StatusForbidden, code, body)
			assert.Contains(t, body, "only managers approve refunds")
			continue
		}
		assert.Equal(t, http.StatusOK, code, body)
	}
	w.waitStatus("refund-1", backend.StatusCompleted)
	cancel()
	r := ui.result()
	assert.Equal(t, 0, r.code, "exit status; stderr:\n%s", r.err)
}
