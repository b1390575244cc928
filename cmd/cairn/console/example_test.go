package console_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/console"
	"github.com/cairn-dev/cairn/durable/inmem"
)

// The console in a program's own server, behind its single sign-on: the
// proxy in front sets X-Forwarded-User for people it has signed in.
// Decisions are made as that user, and checked by the Runtime's
// Authorizer (and again by the workers).
func Example() {
	rt := agent.NewRuntime(inmem.New(), agent.Options{Authorizer: agent.RequireName{}})
	// snippet:console
	c, err := console.New(console.Options{
		Runtime: rt,
		Authenticate: func(r *http.Request) (console.Identity, error) {
			user := r.Header.Get("X-Forwarded-User")
			if user == "" {
				return console.Identity{}, console.ErrUnauthenticated
			}
			return console.Identity{Name: user}, nil
		},
		TraceURL: "http://localhost:16686/trace/{trace_id}",
	})
	if err != nil {
		log.Fatal(err)
	}
	// end snippet:console
	// In the program: http.ListenAndServe("127.0.0.1:7070", c), at the
	// root of its own address.
	for _, user := range []string{"", "alice@example.com"} {
		req := httptest.NewRequest(http.MethodGet, "/inbox", nil)
		if user != "" {
			req.Header.Set("X-Forwarded-User", user)
		}
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		fmt.Printf("%q: %d\n", user, rec.Code)
	}
	// Output:
	// "": 401
	// "alice@example.com": 200
}
