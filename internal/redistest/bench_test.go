package redistest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/redistest"
)

// TestForBenchPrivate: without the environment variable, a benchmark gets
// a private server and the store's default prefix.
func TestForBenchPrivate(t *testing.T) {
	t.Setenv(redistest.BenchURLEnv, "")
	target := redistest.ForBench(t)
	require.NotNil(t, target.Server, "a private server")
	assert.Equal(t, "cairn", target.Prefix)
	assert.Equal(t, target.Server.URL(), target.URL)
	assert.NoError(t, target.Client().Ping(t.Context()).Err())
}

// TestForBenchShared: with the environment variable, a benchmark uses the
// server it names, under a prefix of its own whose keys are deleted when
// the benchmark ends; no other key is touched.
func TestForBenchShared(t *testing.T) {
	ctx := t.Context()
	srv := redistest.Start(t)
	c := srv.Client()
	require.NoError(t, c.Set(ctx, "cairn:{r:other}:run", "kept", 0).Err())
	t.Setenv(redistest.BenchURLEnv, srv.URL())

	var prefixes []string
	for i := range 2 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			target := redistest.ForBench(t)
			assert.Nil(t, target.Server, "a private server, with %s set", redistest.BenchURLEnv)
			assert.Equal(t, srv.Addr(), target.Addr())
			assert.True(t, strings.HasPrefix(target.Prefix, "cairnb-"), "prefix %q", target.Prefix)
			prefixes = append(prefixes, target.Prefix)
			// More keys than a SCAN page, and a key whose name only
			// begins like the prefix.
			for k := range 2500 {
				require.NoError(t, c.Set(ctx, fmt.Sprintf("%s:{r:%d}:run", target.Prefix, k), "x", 0).Err())
			}
			require.NoError(t, c.Set(ctx, target.Prefix+"x:not-mine", "kept", 0).Err())
		})
	}
	assert.NotEqual(t, prefixes[0], prefixes[1], "two benchmarks, one prefix")
	keys, err := c.Keys(ctx, "*").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"cairn:{r:other}:run", prefixes[0] + "x:not-mine", prefixes[1] + "x:not-mine"}, keys,
		"the keys left when the benchmarks ended")
}

func TestGlobEscape(t *testing.T) {
	assert.Equal(t, `a\*b\?c\[d\]e\\f:`, redistest.GlobEscape(`a*b?c[d]e\f:`))
}
