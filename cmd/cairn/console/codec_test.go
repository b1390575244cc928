package console_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/console"
	"github.com/cairn-dev/cairn/durable/backend"
)

// sealed is the workers' codec: it seals every payload at rest.
type sealed struct{}

func (sealed) Name() string { return "test-seal" }

func (sealed) Encode(p []byte) ([]byte, error) { return append([]byte("sealed:"), p...), nil }

func (sealed) Decode(d []byte) ([]byte, error) {
	p, ok := bytes.CutPrefix(d, []byte("sealed:"))
	if !ok {
		return nil, errors.New("not sealed")
	}
	return p, nil
}

// blind reads as a console without the key does (as cmd/cairn's codec
// does): what it cannot open is shown as encrypted.
type blind struct{ sealed }

func (blind) Decode([]byte) ([]byte, error) { return []byte(`"(encrypted: key k1)"`), nil }

// TestEncrypted: a reader whose codec cannot open the payloads sees that
// they are encrypted, and none of what they hold; one who can, sees them.
func TestEncrypted(t *testing.T) {
	var w *world
	readers := map[string]*agent.Runtime{}
	w = newWorldWith(t, nil, agent.Options{Authorizer: managers, Codec: sealed{}}, console.Options{
		Authenticate: func(r *http.Request) (console.Identity, error) {
			return console.Identity{Name: r.Header.Get("X-User")}, nil
		},
		ViewFor: func(id console.Identity) *agent.Runtime { return readers[id.Name] },
	})
	readers["alice"] = agent.NewRuntime(w.store, agent.Options{Codec: sealed{}})
	readers["bob"] = agent.NewRuntime(w.store, agent.Options{Codec: blind{}})
	w.start("support", "s-1", backend.StatusAwaitingApproval)

	page := func(user string) string {
		req, err := http.NewRequest(http.MethodGet, w.srv.URL+"/runs/s-1", nil)
		require.NoError(t, err)
		req.Header.Set("X-User", user)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(res.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, b.String())
		return b.String()
	}
	secret := "My order A-1001 came cold"
	body := page("bob")
	assert.Contains(t, body, `🔒 encrypted: key k1`)
	assert.Contains(t, body, "payloads are encrypted with keys this console was not given")
	assert.NotContains(t, body, secret, "a payload bob's codec cannot open")
	assert.NotContains(t, body, "A-1001", "a payload bob's codec cannot open")
	body = page("alice")
	assert.Contains(t, body, secret)
	assert.NotContains(t, body, "encrypted")
}
