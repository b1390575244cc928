package tiktoken_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/memory/tiktoken"
)

// The counts are those of OpenAI's tiktoken library for the same texts, as
// its documentation and cookbook give them (-1: not given there).
func TestCountsAsTiktoken(t *testing.T) {
	o200k, err := tiktoken.New(tiktoken.O200kBase)
	require.NoError(t, err)
	cl100k, err := tiktoken.New(tiktoken.Cl100kBase)
	require.NoError(t, err)
	for _, tc := range []struct {
		text          string
		o200k, cl100k int
	}{
		{"", 0, 0},
		{"hello world", 2, 2},
		{"Hello, world!", 4, 4},
		{"tiktoken is great!", -1, 6},
	} {
		if tc.o200k >= 0 {
			assert.Equal(t, tc.o200k, o200k.Count(tc.text), "o200k %q", tc.text)
		}
		assert.Equal(t, tc.cl100k, cl100k.Count(tc.text), "cl100k %q", tc.text)
	}
	assert.Positive(t, o200k.Count("\xff\xfe not UTF-8"))
}

func TestUnknownEncodingOrModel(t *testing.T) {
	_, err := tiktoken.New("p50k_edit")
	assert.ErrorContains(t, err, "unknown encoding")
	_, err = tiktoken.ForModel("no-such-model")
	assert.Error(t, err)
	tk, err := tiktoken.ForModel("gpt-4o-mini")
	require.NoError(t, err)
	assert.Equal(t, 2, tk.Count("hello world"))
}
