// Package tiktoken counts tokens with OpenAI's encodings (o200k_base for
// GPT-4o, GPT-4.1, GPT-5 and the o-series; cl100k_base for GPT-4 and
// GPT-3.5), for a memory.Policy. The encodings are embedded in the
// module, through github.com/tiktoken-go/tokenizer: nothing is downloaded
// at run time. They add about 10 MB to a binary, which is why they live in
// their own package; memory.Approx needs none.
package tiktoken

import (
	"fmt"

	"github.com/tiktoken-go/tokenizer"

	"github.com/cairn-dev/cairn/memory"
)

var _ memory.Tokenizer = (*Tokenizer)(nil)

// The encodings New knows.
const (
	O200kBase  = "o200k_base"
	Cl100kBase = "cl100k_base"
)

// Tokenizer counts the tokens of one encoding. It is safe for concurrent
// use.
type Tokenizer struct {
	codec tokenizer.Codec
}

// New returns the tokenizer of an encoding: O200kBase or Cl100kBase. The
// first call in a process loads the encoding's vocabulary (tens of
// milliseconds); later ones share it.
func New(encoding string) (*Tokenizer, error) {
	switch encoding {
	case O200kBase, Cl100kBase:
	default:
		return nil, fmt.Errorf("tiktoken: unknown encoding %q (want %s or %s)", encoding, O200kBase, Cl100kBase)
	}
	codec, err := tokenizer.Get(tokenizer.Encoding(encoding))
	if err != nil {
		return nil, fmt.Errorf("tiktoken: %s: %w", encoding, err)
	}
	return &Tokenizer{codec: codec}, nil
}

// ForModel returns the tokenizer of an OpenAI model ("gpt-4o",
// "gpt-4.1-mini", "gpt-4", ...).
func ForModel(model string) (*Tokenizer, error) {
	codec, err := tokenizer.ForModel(tokenizer.Model(model))
	if err != nil {
		return nil, fmt.Errorf("tiktoken: model %q: %w", model, err)
	}
	return &Tokenizer{codec: codec}, nil
}

// Count returns the number of tokens of text. Text that is not valid
// UTF-8 is counted byte for byte, as the encoding does.
func (t *Tokenizer) Count(text string) int {
	n, err := t.codec.Count(text)
	if err != nil {
		// The encoding's pattern failed to match (it has no timeout
		// set, so this does not happen): count as Approx does.
		return memory.Approx{}.Count(text)
	}
	return n
}
