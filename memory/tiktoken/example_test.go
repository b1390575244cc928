package tiktoken_test

import (
	"fmt"

	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/memory/tiktoken"
)

// A policy that counts tokens as GPT-4o does.
func Example() {
	tok, err := tiktoken.New(tiktoken.O200kBase)
	if err != nil {
		panic(err)
	}
	policy := &memory.Policy{MaxTokens: 8000, Tokenizer: tok}
	fmt.Println(tok.Count("Hello, world!"), policy.Validate())
	// Output: 4 <nil>
}
