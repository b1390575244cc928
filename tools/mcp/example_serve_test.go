package mcp_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/inmem"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/scripted"
	"github.com/cairn-dev/cairn/tools"
	"github.com/cairn-dev/cairn/tools/mcp"
)

// An agent served as an MCP tool: an MCP client (an IDE, another agent)
// calls it over streamable HTTP, which starts a durable run and returns
// its answer. With a run_id of the caller's choosing, a retried call
// waits for the same run instead of starting another.
func ExampleNewAgentServer() {
	type orderArgs struct {
		Order string `json:"order"`
	}
	lookup := tools.MustNew("lookup_order", "Find an order by its number.",
		func(ctx context.Context, in orderArgs) (string, error) {
			return "order " + in.Order + " shipped on Monday", nil
		})
	set, err := tools.NewSet(lookup)
	if err != nil {
		log.Fatal(err)
	}
	support := &agent.Agent{
		Name:        "support",
		Description: "Answers questions about orders.",
		Model: scripted.New( // openai.New("gpt-4o-mini") for a real one
			providers.Response{Message: providers.Message{ToolCalls: []providers.ToolCall{
				{Name: "lookup_order", Arguments: `{"order":"A-17"}`}}}},
			providers.Response{Message: providers.Message{Content: "Your order A-17 shipped on Monday."}}),
		Tools: set,
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	rt := agent.NewRuntime(inmem.New(), agent.Options{}) // durable/redis in production
	if err := rt.Register(support); err != nil {
		log.Fatal(err)
	}
	go rt.NewWorker(durable.WorkerOptions{}).Run(ctx) // workers may be in other processes

	// snippet:mcp-serve
	srv, err := mcp.NewAgentServer(rt, mcp.ServeOptions{Agents: []*agent.Agent{support}})
	if err != nil {
		log.Fatal(err)
	}
	web := httptest.NewServer(srv) // or mux.Handle("/mcp", requireUser(srv)): authentication is yours
	defer web.Close()

	// An MCP client: an IDE, another agent.
	client := sdk.NewClient(&sdk.Implementation{Name: "ide", Version: "1.0"}, nil)
	session, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: web.URL}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	res, err := session.CallTool(ctx, &sdk.CallToolParams{Name: "support", // the agent's name
		Arguments: map[string]any{"message": "Where is my order A-17?", "run_id": "ticket-17"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Content[0].(*sdk.TextContent).Text)
	// A run that outlives the call's wait is read by its id later, from any
	// process that serves the same store:
	res, err = session.CallTool(ctx, &sdk.CallToolParams{Name: mcp.RunResultTool,
		Arguments: map[string]any{"run_id": "ticket-17"}})
	// end snippet:mcp-serve
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Content[0].(*sdk.TextContent).Text)
	for tool, err := range session.Tools(ctx, nil) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("tool:", tool.Name)
	}
	// Output:
	// Your order A-17 shipped on Monday.
	// Your order A-17 shipped on Monday.
	// tool: cairn_run_result
	// tool: support
}

// Authentication is the embedding program's: here the SDK's bearer-token
// middleware, in front of the server. The Guard then authorises each call
// knowing who makes it: a run a user starts is theirs (its Input.User,
// which scopes the agent's long-term memory, and its id), and no one else
// reads it.
func ExampleServeOptions_guard() {
	helper := &agent.Agent{Name: "helper", Model: scripted.New(
		providers.Response{Message: providers.Message{Content: "Hello!"}})}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	rt := agent.NewRuntime(inmem.New(), agent.Options{})
	if err := rt.Register(helper); err != nil {
		log.Fatal(err)
	}
	go rt.NewWorker(durable.WorkerOptions{}).Run(ctx)

	users := map[string]string{"token-of-ada": "ada", "token-of-bob": "bob"}
	verify := func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		user, ok := users[token]
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: user, Expiration: time.Now().Add(time.Hour)}, nil
	}
	srv, err := mcp.NewAgentServer(rt, mcp.ServeOptions{Agents: []*agent.Agent{helper},
		Guard: func(ctx context.Context, call *mcp.ServeCall) error {
			if call.TokenInfo == nil {
				return errors.New("not signed in") // mounted without the middleware
			}
			user := call.TokenInfo.UserID
			if call.Input != nil { // a run starts
				call.Input.User = user
				call.RunID = user + "." + call.RunID
				return nil
			}
			if !strings.HasPrefix(call.RunID, user+".") {
				return errors.New("not your run")
			}
			return nil
		}})
	if err != nil {
		log.Fatal(err)
	}
	web := httptest.NewServer(auth.RequireBearerToken(verify, nil)(srv))
	defer web.Close()

	connect := func(token string) *sdk.ClientSession {
		client := sdk.NewClient(&sdk.Implementation{Name: "ide", Version: "1.0"}, nil)
		session, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: web.URL,
			HTTPClient: &http.Client{Transport: serveBearer(token)}}, nil)
		if err != nil {
			log.Fatal(err)
		}
		return session
	}
	ada, bob := connect("token-of-ada"), connect("token-of-bob")
	defer ada.Close()
	defer bob.Close()
	res, err := ada.CallTool(ctx, &sdk.CallToolParams{Name: "helper",
		Arguments: map[string]any{"message": "Hi", "run_id": "r-1"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Content[0].(*sdk.TextContent).Text, res.Meta[mcp.MetaServedRun].(map[string]any)["run_id"])
	res, err = bob.CallTool(ctx, &sdk.CallToolParams{Name: mcp.RunResultTool,
		Arguments: map[string]any{"run_id": "ada.r-1"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.IsError, res.Content[0].(*sdk.TextContent).Text)
	// Output:
	// Hello! ada.r-1
	// true refused: not your run
}

// serveBearer sends a bearer token with every request.
type serveBearer string

func (b serveBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}
