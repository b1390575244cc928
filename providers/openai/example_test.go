package openai_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/openai"
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

// Three tools, described by their JSON Schemas, offered to a model behind
// an OpenAI-compatible endpoint; the model calls two of them at once, gets
// their results, and answers.
func Example() {
	srv := localServer()
	defer srv.Close()
	model, err := openai.New("gpt-4o-mini", openai.WithBaseURL(srv.URL+"/v1"), openai.WithAPIKey("sk-local"))
	if err != nil {
		panic(err)
	}

	tools := []providers.ToolDefinition{
		{Name: "lookup_order", Description: "Find an order by id.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string"}},"required":["order_id"]}`)},
		{Name: "check_stock", Description: "Units in stock of a SKU.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"sku":{"type":"string"}},"required":["sku"]}`)},
		{Name: "refund", Description: "Refund an order, in cents.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string"},"cents":{"type":"integer","minimum":1}},"required":["order_id","cents"]}`)},
	}
	results := map[string]string{"lookup_order": `{"status":"ships today"}`, "check_stock": `{"units":12}`}

	req := providers.Request{
		System:   "You are a pizza shop assistant.",
		Messages: []providers.Message{{Role: providers.RoleUser, Content: "Where is order A-7, and do you have margheritas?"}},
		Tools:    tools,
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
			fmt.Printf("  %s(%s)\n", call.Name, call.Arguments)
			req.Messages = append(req.Messages, providers.Message{Role: providers.RoleTool, ToolCallID: call.ID, Content: results[call.Name]})
		}
	}
	// Output:
	// tool_calls: 137 tokens
	//   lookup_order({"order_id":"A-7"})
	//   check_stock({"sku":"pizza-margherita"})
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
