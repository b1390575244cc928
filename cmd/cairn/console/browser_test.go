package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/cmd/cairn/console"
	"github.com/cairn-dev/cairn/durable/backend"
)

// The browser tests drive Debian's chromium (apt-get install chromium;
// .ci/run installs it) with chromedp, against a console on an in-memory
// store with a worker: what people do on the pages, and what the page's
// script does with the live stream.

// browser starts a headless chromium for the test and returns its
// context; it is stopped when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a browser: run without -short")
	}
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("no chromium: apt-get install chromium (.ci/run does)")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser; it lives as long as ctx.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	return ctx
}

// screenshots is where the tests write their screenshots: $CAIRN_SCREENSHOTS,
// or a new temporary directory that is kept for the developer to look at.
func screenshots(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CAIRN_SCREENSHOTS")
	if dir == "" {
		var err error
		dir, err = os.MkdirTemp("", "cairn-console-screens-")
		require.NoError(t, err)
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// shoot writes a screenshot of the whole page to dir/name.
func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Log("screenshot:", path)
}

// step bounds one browser action.
func step[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	require.NoError(t, err, what)
	return v
}

func poll(expr string) chromedp.Action[bool] {
	return chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))
}

// TestBrowser: sign in with the printed URL; the run list; a run awaiting
// approval, approved from its page and seen to finish without a reload;
// a rejection with a reason and an answer from the inbox; a model's
// answer with markup shown as text; requests without a token or a CSRF
// token refused.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	dir := screenshots(t)
	w := newWorld(t, nil, console.Options{TraceURL: "http://localhost:16686/trace/{trace_id}"})
	w.start("parrot", "p-1", backend.StatusCompleted)
	w.start("support", "refund-2", backend.StatusAwaitingApproval)
	w.start("clerk", "shirt-1", backend.StatusWaiting)
	w.start("support", "refund-1", backend.StatusAwaitingApproval)

	// Sign in with the URL cairn ui prints: the runs, newest first.
	step(t, ctx, "sign in", chromedp.Navigate(w.console.LoginURL(w.srv.URL)))
	step(t, ctx, "the run list", chromedp.WaitVisible(chromedp.CSS("#runs")))
	url := step(t, ctx, "location", chromedp.Evaluate[string]("location.href"))
	assert.Equal(t, w.srv.URL+"/runs", url, "the token is not left in the address bar")
	first := step(t, ctx, "first run", chromedp.Text(chromedp.CSS("#runs tbody tr:first-child .run-link")))
	assert.Equal(t, "refund-1", first, "newest first")
	shoot(t, ctx, dir, "runs.png")

	// Without the cookie, or without the CSRF token, nothing is served.
	status := step(t, ctx, "no token", chromedp.Evaluate[int](`fetch('/runs', {credentials: 'omit'}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	assert.Equal(t, 401, status, "a request without the token")
	status = step(t, ctx, "no CSRF token", chromedp.Evaluate[int](`fetch('/runs/refund-2/calls/call_1_0/decide',
		{method: 'POST', body: new URLSearchParams({verdict: 'approve'}), headers: {'Accept': 'application/json'}}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	assert.Equal(t, 403, status, "a decision without the CSRF token")
	assert.Zero(t, w.refunds.Load(), "refunds after refused requests")

	// Open the run that waits, approve it from its page, and watch it
	// finish, live: the page is not reloaded (the marker survives).
	step(t, ctx, "open refund-1", chromedp.Click(chromedp.CSS(`#runs a[href="/runs/refund-1"]`)))
	step(t, ctx, "the approval form", chromedp.WaitVisible(chromedp.CSS(`#run-pending form.decide`)))
	step(t, ctx, "live", poll(`document.getElementById('live-state').textContent === 'live'`))
	shoot(t, ctx, dir, "run-awaiting.png")
	step(t, ctx, "mark the page", chromedp.Evaluate[bool](`window.notReloaded = true`))
	step(t, ctx, "reason", chromedp.SendKeys(chromedp.CSS(`#run-pending input[name=reason]`), "receipt checked"))
	step(t, ctx, "approve", chromedp.Click(chromedp.CSS(`#run-pending button.approve`)))
	step(t, ctx, "completed", poll(`document.getElementById('run-status').textContent === 'completed'`))
	step(t, ctx, "the answer", poll(`document.getElementById('run-chat').textContent.includes(`+jsString(finalAnswer)+`)`))
	assert.True(t, step(t, ctx, "no reload", chromedp.Evaluate[bool](`window.notReloaded === true`)), "the page was reloaded")
	chat := step(t, ctx, "chat", chromedp.Text(chromedp.CSS(`#run-chat`)))
	assert.Contains(t, chat, "approved by alice: receipt checked")
	assert.EqualValues(t, 1, w.refunds.Load(), "refunds")
	shoot(t, ctx, dir, "run-completed.png")

	// The inbox: reject refund-2 (a reason is asked for first), answer
	// shirt-1's question.
	step(t, ctx, "inbox", chromedp.Navigate(w.srv.URL+"/inbox"))
	step(t, ctx, "requests", chromedp.WaitVisible(chromedp.CSS(`#requests`)))
	shoot(t, ctx, dir, "inbox.png")
	reject := `li[data-run="refund-2"] `
	step(t, ctx, "reject without a reason", chromedp.Click(chromedp.CSS(reject+`button.reject`)))
	step(t, ctx, "asks for a reason", poll(`document.querySelector('`+reject+`output.result').textContent.includes('needs a reason')`))
	step(t, ctx, "reason", chromedp.SendKeys(chromedp.CSS(reject+`input[name=reason]`), "already refunded"))
	step(t, ctx, "reject", chromedp.Click(chromedp.CSS(reject+`button.reject`)))
	step(t, ctx, "rejected", poll(`document.querySelector('`+reject+`output.result').textContent.startsWith('Rejection')`))
	answer := `li[data-run="shirt-1"] `
	step(t, ctx, "answer", chromedp.SendKeys(chromedp.CSS(answer+`input[name=text]`), "L, please"))
	step(t, ctx, "send the answer", chromedp.Click(chromedp.CSS(answer+`button.send-answer`)))
	step(t, ctx, "answered", poll(`document.querySelector('`+answer+`output.result').textContent.startsWith('Answer to')`))
	w.waitStatus("refund-2", backend.StatusCompleted)
	w.waitStatus("shirt-1", backend.StatusCompleted)
	d := w.records("refund-2", "approval_decided")
	require.Len(t, d, 1)
	assert.Equal(t, map[string]any{"approved": nil, "by": "alice", "reason": "already refunded"},
		map[string]any{"approved": d[0]["approved"], "by": d[0]["by"], "reason": d[0]["reason"]})
	a := w.records("shirt-1", "question_answered")
	require.Len(t, a, 1)
	assert.Equal(t, "L, please", a[0]["text"])
	assert.EqualValues(t, 1, w.refunds.Load(), "refunds after a rejection")

	// A model's answer with a script and an image whose onerror runs
	// script: shown as text, nothing runs.
	step(t, ctx, "parrot", chromedp.Navigate(w.srv.URL+"/runs/p-1"))
	step(t, ctx, "its chat", chromedp.WaitVisible(chromedp.CSS(`#run-chat .role-assistant`)))
	text := step(t, ctx, "the answer", chromedp.Text(chromedp.CSS(`#run-chat .role-assistant .text`)))
	assert.Equal(t, hostile, text, "the answer, as text")
	pwned := step(t, ctx, "pwned", chromedp.Evaluate[bool](`typeof window.pwned !== 'undefined'`))
	assert.False(t, pwned, "the model's markup ran")
	images := step(t, ctx, "images", chromedp.Evaluate[int](`document.querySelectorAll('#run-chat img, #run-chat script').length`))
	assert.Zero(t, images, "elements made from the model's text")
	shoot(t, ctx, dir, "run-escaped.png")
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	b := []byte{'\''}
	for _, r := range s {
		switch r {
		case '\'', '\\':
			b = append(b, '\\', byte(r))
		default:
			b = append(b, string(r)...)
		}
	}
	return string(append(b, '\''))
}
