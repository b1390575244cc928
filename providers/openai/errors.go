package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/cairn-dev/cairn/providers"
)

// callInfo is what the HTTP layer saw of one call, which go-openai does not
// report: the response headers (for Retry-After) and, for a stream, whether
// the [DONE] marker arrived (go-openai reports both it and a cut-off body as
// io.EOF). It travels in the request's context, so calls share nothing.
type callInfo struct {
	streaming bool
	header    http.Header // nil until a response arrived
	done      bool        // a "data: [DONE]" line was read
}

type callKey struct{}

func withCallInfo(ctx context.Context, call *callInfo) context.Context {
	return context.WithValue(ctx, callKey{}, call)
}

// recorder is the go-openai HTTP client: it fills the callInfo of the
// request's context and watches a stream's body for [DONE].
type recorder struct{ hc *http.Client }

func (r recorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.hc.Do(req)
	call, _ := req.Context().Value(callKey{}).(*callInfo)
	if err != nil || call == nil {
		return resp, err
	}
	call.header = resp.Header
	if call.streaming {
		resp.Body = &doneWatcher{ReadCloser: resp.Body, done: &call.done}
	}
	return resp, nil
}

// doneWatcher sets *done when a line of the body is "data: [DONE]", with the
// leniency of go-openai's reader (surrounding spaces, any space after the
// colon). It keeps at most a few bytes of the current line.
type doneWatcher struct {
	io.ReadCloser
	done *bool
	line []byte
	long bool // the current line is longer than any [DONE] line
}

const maxDoneLine = 64

func (w *doneWatcher) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			if !w.long && isDone(w.line) {
				*w.done = true
			}
			w.line, w.long = w.line[:0], false
			continue
		}
		if len(w.line) < maxDoneLine {
			w.line = append(w.line, b)
		} else {
			w.long = true
		}
	}
	return n, err
}

func isDone(line []byte) bool {
	rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data:"))
	return ok && string(bytes.TrimSpace(rest)) == "[DONE]"
}

// classify turns an error of a call into a classified providers.Error, or,
// when ctx ended, into ctx's error: the caller's deadline or cancellation is
// not the provider's failure.
func classify(ctx context.Context, err error, call *callInfo) error {
	if ctx.Err() != nil {
		return fmt.Errorf("openai: %w", ctx.Err())
	}
	e := &providers.Error{Provider: provider}
	var apiErr *goopenai.APIError
	var reqErr *goopenai.RequestError
	var urlErr *url.Error
	switch {
	case errors.As(err, &apiErr):
		e.StatusCode, e.Message = apiErr.HTTPStatusCode, apiErr.Message
		e.Code = apiCode(apiErr)
		e.Kind = kindOf(e.StatusCode, e.Code, apiErr.Type)
	case errors.As(err, &reqErr):
		// An error status without an OpenAI error body, say a proxy's 502.
		e.StatusCode, e.Message = reqErr.HTTPStatusCode, snippet(reqErr.Body)
		e.Kind = kindOf(e.StatusCode, "", "")
	case errors.As(err, &urlErr):
		e.Kind, e.Err = providers.ErrUnavailable, err // no answer: refused, reset, timed out
	case call.header != nil:
		e.Kind, e.Err = providers.ErrTruncated, err // an answer that did not decode
	default:
		e.Kind, e.Err = providers.ErrInvalidRequest, err // go-openai refused to send it
	}
	if e.Retryable() {
		e.RetryAfter = retryAfter(call.header, time.Now())
	}
	return providers.Classify(e)
}

// classifyStream classifies an error met while reading a stream: an error
// event, or a body that broke off or did not parse.
func classifyStream(ctx context.Context, err error, call *callInfo) error {
	if ctx.Err() != nil {
		return fmt.Errorf("openai: %w", ctx.Err())
	}
	var apiErr *goopenai.APIError
	if errors.As(err, &apiErr) {
		return classify(ctx, err, call)
	}
	return providers.Classify(&providers.Error{Kind: providers.ErrTruncated, Provider: provider, Err: err})
}

// apiCode is the error's code, else its type.
func apiCode(e *goopenai.APIError) string {
	switch c := e.Code.(type) {
	case string:
		if c != "" {
			return c
		}
	case int:
		return strconv.Itoa(c)
	}
	return e.Type
}

// kindOf classifies by HTTP status, then code or type: OpenAI says
// insufficient_quota with a 429, Azure content_filter with a 400, and an
// error event inside a stream has no status at all.
func kindOf(status int, code, typ string) error {
	ct := code + " " + typ
	switch {
	case strings.Contains(ct, "content_policy") || strings.Contains(ct, "content_filter"):
		return providers.ErrContentPolicy
	case strings.Contains(ct, "insufficient_quota"):
		return providers.ErrQuotaExceeded
	case status == http.StatusTooManyRequests:
		return providers.ErrRateLimited
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return providers.ErrAuth
	case status == http.StatusRequestTimeout || status == http.StatusConflict || status >= 500:
		return providers.ErrUnavailable
	case status >= 400:
		return providers.ErrInvalidRequest
	case status != 0:
		return providers.ErrUnavailable
	case strings.Contains(ct, "rate_limit"):
		return providers.ErrRateLimited
	case strings.Contains(ct, "invalid_request"):
		return providers.ErrInvalidRequest
	case strings.Contains(ct, "auth") || strings.Contains(ct, "permission"):
		return providers.ErrAuth
	default:
		return providers.ErrUnavailable
	}
}

// retryAfter reads the wait a server asked for: retry-after-ms (OpenAI's,
// in milliseconds), else Retry-After in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e12 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 && s < 1e9 {
			return time.Duration(s * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// snippet is the start of an error body, for the message.
func snippet(body []byte) string {
	const max = 200
	s := strings.TrimSpace(string(body))
	if len(s) <= max {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "\uFFFD") + "…"
}
