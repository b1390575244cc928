package cli_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/agent"
	"github.com/cairn-dev/cairn/cmd/cairn/cli"
	"github.com/cairn-dev/cairn/durable/aesgcm"
	"github.com/cairn-dev/cairn/durable/backend"
)

// withKeys is the world's app with CAIRN_CODEC_KEYS set to keys.
func (w *world) withKeys(keys string) cli.App {
	app := w.app
	url := w.srv.URL()
	app.Getenv = func(key string) string {
		switch key {
		case cli.EnvRedisURL:
			return url
		case aesgcm.EnvKeys:
			return keys
		}
		return ""
	}
	return app
}

// TestShowEncrypted: workers encrypt payloads with AES-GCM; the tool
// decrypts them with the keys in its environment, and without them shows
// each payload as encrypted and the rest of the run.
func TestShowEncrypted(t *testing.T) {
	k1 := aesgcm.Key{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}
	codec, err := aesgcm.New(k1)
	require.NoError(t, err)
	w := newWorldWith(t, agent.Options{Codec: codec})
	w.start(supportAgent(), "sealed-1", agent.Input{Message: "My pizza came cold, refund my 120 euros."},
		backend.StatusAwaitingApproval)
	keys := "k1:" + base64.StdEncoding.EncodeToString(k1.Secret)
	stale := "k0:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))

	withKey := runApp(t, w.withKeys(keys), "show", "sealed-1")
	require.Equal(t, 0, withKey.code, withKey.err)
	assert.Contains(t, withKey.out, "pizza came cold")
	assert.Contains(t, withKey.out, "call_1_0", "the pending approval")
	assert.NotContains(t, withKey.out, "(encrypted")

	for name, app := range map[string]cli.App{"no keys": w.app, "another key": w.withKeys(stale)} {
		r := runApp(t, app, "show", "sealed-1")
		require.Equal(t, 0, r.code, "%s: %s", name, r.err)
		assert.Contains(t, r.out, "(encrypted: key k1)", name)
		assert.NotContains(t, r.out, "pizza came cold", name)
		assert.Contains(t, r.out, "awaiting_approval", name)
		assert.Contains(t, r.out, "History", name)
		assert.Contains(t, r.out, "run_started", name)
		golden(t, "show_encrypted", stable(r.out))
	}

	// Deciding with the key sends an encrypted decision (it waits in the
	// inbox while no worker runs); the run ends.
	w.stopWorker()
	r := runApp(t, w.withKeys(keys), "approve", "sealed-1", "call_1_0", "--by", "alice@example.com", "--reason", "receipt checked")
	require.Equal(t, 0, r.code, r.err)
	inbox, err := w.store.ReadInbox(t.Context(), "sealed-1")
	require.NoError(t, err)
	require.Len(t, inbox, 1)
	assert.Contains(t, string(inbox[0].Event), `"codec":"aes-gcm"`)
	assert.NotContains(t, string(inbox[0].Event), "receipt checked", "inbox readable at rest")
	w.startWorker()
	w.waitStatus("sealed-1", backend.StatusCompleted)
	require.NoError(t, w.rt.Flush(t.Context()))
	feed, err := w.store.ReadFeed(t.Context(), "sealed-1", "", 0)
	require.NoError(t, err)
	require.NotEmpty(t, feed)
	for _, entry := range feed {
		assert.True(t, bytes.HasPrefix(entry.Data, []byte("codec:aes-gcm\n")), "feed entry not sealed: %q", entry.Data)
		for _, secret := range []string{"receipt checked", "pizza", "A-1001"} {
			assert.NotContains(t, string(entry.Data), secret, "feed readable at rest")
		}
	}
	raw, err := w.store.ReadHistory(t.Context(), "sealed-1", 1)
	require.NoError(t, err)
	for _, entry := range raw {
		assert.NotContains(t, string(entry), "receipt checked", "decision readable at rest")
		assert.NotContains(t, string(entry), "pizza came cold", "readable at rest")
	}
	r = runApp(t, w.withKeys(keys), "show", "sealed-1")
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.out, "refunded 120 euros")
	r = runApp(t, w.app, "show", "--json", "sealed-1")
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.out, `"(encrypted: key k1)"`)

	// Keys that do not parse are a usage error that shows no secret.
	r = runApp(t, w.withKeys("k1:"+keys[3:13]), "show", "sealed-1")
	assert.Equal(t, cli.ExitUsage, r.code)
	assert.Contains(t, r.err, aesgcm.EnvKeys)
	assert.NotContains(t, r.err, keys[3:13])
}
