package agent_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/durable/redis"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/memory"
	memredis "github.com/cairn-dev/cairn/memory/redis"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/providers/hashembed"
)

// TestClusterMemory runs a conversation that compacts, and long-term
// memories of several users, on a Redis Cluster of three masters: the
// runs' keys and the memories' keys are spread over them, and no
// operation spans two slots.
func TestClusterMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster of three masters; run without -short")
	}
	cluster := redistest.StartCluster(t, 3)
	store := redis.New(cluster.Client())
	t.Cleanup(func() { _ = store.Close() })
	mem := &memory.Memory{Store: memredis.New(cluster.Client(), memredis.Options{}), Embedder: hashembed.New(0)}

	t.Run("Compaction", func(t *testing.T) {
		testMemoryBoundsALongConversation(t, func(a *agent.Agent) *env { return newEnvOn(t, store, agent.Options{}, a) })
	})
	t.Run("LongTerm", func(t *testing.T) {
		_, model := newRecorder(func(turn int, req providers.Request) (providers.Response, error) {
			if turn == 0 {
				return toolTurn(call(agent.RememberTool, fmt.Sprintf(`{"text":%q}`, lastUser(req)))), nil
			}
			return answer("ok"), nil
		})
		a := &agent.Agent{Name: "cluster-remembering", Model: model, LongTerm: &agent.LongTerm{Memory: mem, Tools: true, Recall: 2}}
		e := newEnvOn(t, store, agent.Options{}, a)
		users := []string{"ana", "bob", "chloe", "dmitri", "eve", "farid"}
		for _, u := range users {
			e.result(e.startRun(a, "cluster-"+u, agent.Input{Message: u + " likes tea", User: u}))
		}
		for _, u := range users {
			hits, err := mem.Recall(context.Background(), "who likes tea", memory.Query{Namespace: "user/" + u})
			require.NoError(t, err)
			require.Len(t, hits, 1, u)
			assert.Equal(t, u+" likes tea", hits[0].Item.Text)
		}
	})
}
