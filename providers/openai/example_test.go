package openai_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/openai"
	"github.com/cairn-dev/cairn/tools"
)

// localServer stands in for api.openai.com, Ollama or vLLM: it asks for
// two tools in parallel, then answers with their results.
func localServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"role":"tool"`) {
			io.WriteString(w, `{"id":"chatcmpl-1","model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"tool_calls",
				"message":{"role":"assistant","tool_calls":[
				{"id":"call_1","type":"function","function":{"name":"lookup_order","arguments":"{\"order_id\":\"A-7\"}"}},
				{"id":"call_2","type":"function","function":{"name":"check_stock","arguments":"{\"sku\":\"pizza-margherita\"}"}}]}}],
				"usage":{"prompt_tokens":96,"completion_tokens":41,"total_tokens":137}}`)
			return
		}
		io.WriteString(w, `{"id":"chatcmpl-2","model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"stop",
			"message":{"role":"assistant","content":"Order A-7 ships today; margheritas are in stock."}}],
			"usage":{"prompt_tokens":160,"completion_tokens":12,"total_tokens":172}}`)
	}))
}

type (
	orderArgs struct {
		OrderID string `json:"order_id" jsonschema:"description=The order's id, e.g. A-7"`
	}
	stockArgs struct {
		SKU string `json:"sku" jsonschema:"description=The product's stock keeping unit"`
	}
	refundArgs struct {
		OrderID string `json:"order_id"`
		Cents   int    `json:"cents" jsonschema:"minimum=1"`
	}
)

// Three tools defined as typed Go functions, offered to a model behind an
// OpenAI-compatible endpoint (here a local test server); the model calls
// two of them at once, gets their results, and answers.
func Example() {
	srv := localServer()
	defer srv.Close()
	model, err := openai.New("gpt-4o-mini", openai.WithBaseURL(srv.URL+"/v1"), openai.WithAPIKey("sk-local"))
	if err != nil {
		panic(err)
	}

	shop, err := tools.NewSet(
		tools.MustNew("lookup_order", "Find an order by id.", func(ctx context.Context, a orderArgs) (map[string]string, error) {
			return map[string]string{"order_id": a.OrderID, "status": "ships today"}, nil
		}),
		tools.MustNew("check_stock", "Units in stock of a SKU.", func(ctx context.Context, a stockArgs) (map[string]int, error) {
			return map[string]int{"units": 12}, nil
		}),
		tools.MustNew("refund", "Refund an order, in cents.", func(ctx context.Context, a refundArgs) (string, error) {
			return "refunded", nil
		}, tools.RequireApprovalIf(func(a refundArgs) bool { return a.Cents > 100_00 })),
	)
	if err != nil {
		panic(err)
	}
	var defs []providers.ToolDefinition
	for _, d := range shop.Definitions() {
		defs = append(defs, providers.ToolDefinition{Name: d.Name, Description: d.Description, Parameters: d.Parameters})
	}

	// snippet:model
	req := providers.Request{
		System:   "You are a pizza shop assistant.",
		Messages: []providers.Message{{Role: providers.RoleUser, Content: "Where is order A-7, and do you have margheritas?"}},
		Tools:    defs,
	}
	ctx := context.Background()
	for {
		resp, err := model.Generate(ctx, req)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: %d tokens\n", resp.FinishReason, resp.Usage.TotalTokens)
		req.Messages = append(req.Messages, resp.Message)
		if resp.FinishReason != providers.FinishToolCalls {
			fmt.Println(resp.Message.Content)
			return
		}
		for _, call := range resp.Message.ToolCalls {
			result, err := shop.Call(ctx, call.Name, []byte(call.Arguments))
			if err != nil {
				panic(err) // fatal, or a failed attempt: a durable agent retries it
			}
			fmt.Printf("  %s(%s) = %s\n", call.Name, call.Arguments, result.Content)
			req.Messages = append(req.Messages, providers.Message{Role: providers.RoleTool, ToolCallID: call.ID, Content: result.Content})
		}
	}
	// end snippet:model

	// Output:
	// tool_calls: 137 tokens
	//   lookup_order({"order_id":"A-7"}) = {"order_id":"A-7","status":"ships today"}
	//   check_stock({"sku":"pizza-margherita"}) = {"units":12}
	// stop: 172 tokens
	// Order A-7 ships today; margheritas are in stock.
}

// Streaming delivers text as it comes; the final response is the same as
// Generate's.
func ExampleModel_Stream() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, chunk := range []string{
			`{"id":"c","model":"llama3","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"}}]}`,
			`{"id":"c","model":"llama3","choices":[{"index":0,"delta":{"content":", world"},"finish_reason":"stop"}]}`,
			`{"id":"c","model":"llama3","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`,
			`[DONE]`,
		} {
			fmt.Fprintf(w, "data: %s\n\n", chunk)
		}
	}))
	defer srv.Close()
	// Ollama, vLLM and the llama.cpp server need no key.
	model, _ := openai.New("llama3", openai.WithBaseURL(srv.URL+"/v1"))
	resp, err := model.Stream(context.Background(),
		providers.Request{Messages: []providers.Message{{Role: providers.RoleUser, Content: "Say hello."}}},
		func(d providers.Delta) error {
			fmt.Printf("delta %q\n", d.Text)
			return nil
		})
	fmt.Println(resp.Message.Content, resp.Usage.TotalTokens, err)
	// Output:
	// delta "Hello"
	// delta ", world"
	// Hello, world 8 <nil>
}

// An Embedder turns texts into vectors, for long-term memory's search by
// meaning (package memory). Here a local test server stands in for
// OpenAI, Ollama or vLLM.
func ExampleEmbedder() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"object":"list","model":"text-embedding-3-small","data":[
			{"object":"embedding","index":0,"embedding":[0.12,-0.5,0.86]},
			{"object":"embedding","index":1,"embedding":[0.7,0.1,-0.7]}],
			"usage":{"prompt_tokens":9,"total_tokens":9}}`)
	}))
	defer srv.Close()
	embedder, err := openai.NewEmbedder("text-embedding-3-small", openai.WithBaseURL(srv.URL+"/v1"), openai.WithAPIKey("sk-local"))
	if err != nil {
		panic(err)
	}
	vectors, err := embedder.Embed(context.Background(), []string{"Drinks coffee black.", "Lives in Lyon."})
	fmt.Println(len(vectors), vectors[0], err)
	// Output:
	// 2 [0.12 -0.5 0.86] <nil>
}
