package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	webconsole "github.com/cairn-dev/cairn/cmd/cairn/console"
)

// Environment variables of cairn ui.
const (
	// EnvUIToken gives the console's token when --token is not set.
	EnvUIToken = "CAIRN_UI_TOKEN"
	// EnvTraceURL gives the tracing backend's URL template when
	// --trace-url is not set.
	EnvTraceURL = "CAIRN_TRACE_URL"
)

// uiFlags are cairn ui's flags.
type uiFlags struct {
	listen   string
	user     string
	token    string
	traceURL string
}

func (app App) uiCommand() *command {
	var f uiFlags
	return &command{
		name: "ui",
		args: "[--listen ADDR] [--user NAME] [--trace-url URL]",
		summary: "Serve the web console: runs live, and an inbox to approve, reject and answer.\n" +
			"It prints a URL with a token; the browser that opens it is signed in as --user. Decisions are\n" +
			"checked by the program's authorizer (cli.App.Authorizer) and recorded under that name.",
		store: true,
		nargs: exactly(0),
		flags: func(fs *flag.FlagSet, o *opts) {
			fs.StringVar(&f.listen, "listen", "127.0.0.1:7070", "the `ADDR`ess to listen on (loopback by default: put a proxy with TLS in front to serve others)")
			fs.StringVar(&f.user, "user", "", "who the token's holder is: decisions are checked by the authorizer and recorded under this `NAME`\n"+
				"(without it the console is read-only, unless the program authenticates people itself: App.Authenticate)")
			fs.StringVar(&f.token, "token", "", "the token that signs a browser in (default $"+EnvUIToken+", else a random one)")
			fs.StringVar(&f.traceURL, "trace-url", "", "link trace ids to a tracing backend: a `URL` with {trace_id}, e.g.\n"+
				"http://localhost:16686/trace/{trace_id} (default $"+EnvTraceURL+")")
		},
		run: func(ctx context.Context, e *env, _ []string) error { return cmdUI(ctx, e, f) },
	}
}

func cmdUI(ctx context.Context, e *env, f uiFlags) error {
	c, err := webconsole.New(webconsole.Options{
		Runtime:      e.rt,
		View:         e.view,
		Store:        e.store,
		Authenticate: e.app.Authenticate,
		Token:        e.app.flagOrEnv(f.token, EnvUIToken),
		TokenUser:    f.user,
		TraceURL:     e.app.flagOrEnv(f.traceURL, EnvTraceURL),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return usageError("--listen %s: %v", f.listen, err)
	}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	base := "http://" + ln.Addr().String()
	if e.app.Authenticate != nil {
		fmt.Fprintf(e.out, "Console at %s/\n", base)
	} else {
		fmt.Fprintf(e.out, "Console at %s\n", c.LoginURL(base))
		who := cmp.Or(f.user, "nobody: read-only (give --user NAME to act)")
		fmt.Fprintf(e.out, "Whoever opens it is signed in as %s.\n", who)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(e.errOut, "warning: listening on %s, beyond this machine, without TLS\n", host)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shut)
	c.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
