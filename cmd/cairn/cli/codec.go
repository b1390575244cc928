package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cairn-dev/cairn/durable/aesgcm"
	"github.com/cairn-dev/cairn/durable/backend"
)

// withEnvCodec returns app with, when it has no Codec, the AES-GCM codec
// whose keys the environment gives (aesgcm.EnvKeys); an app without a codec
// and an environment without keys reads payloads as they are.
func (app App) withEnvCodec() (App, error) {
	if app.Codec != nil {
		return app, nil
	}
	c, err := aesgcm.FromEnv(app.getenv)
	if err != nil {
		return app, usageError("%v", err)
	}
	if c != nil {
		app.Codec = c
	}
	return app, nil
}

// shownCodec wraps the app's codec (or none) for commands that show
// payloads: a payload it cannot decode is shown as "(encrypted: key ID)"
// in its place, so that one payload does not hide the rest of a run.
// Encoding with it is encoding with the app's codec.
type shownCodec struct {
	inner backend.Codec // may be nil
}

func (s shownCodec) Name() string {
	if s.inner == nil {
		return aesgcm.Name
	}
	return s.inner.Name()
}

func (s shownCodec) Encode(p []byte) ([]byte, error) {
	if s.inner == nil {
		return nil, fmt.Errorf("no codec to encode with: set %s", aesgcm.EnvKeys)
	}
	return s.inner.Encode(p)
}

func (s shownCodec) Decode(data []byte) ([]byte, error) {
	if s.inner != nil {
		plain, err := s.inner.Decode(data)
		if err == nil {
			return plain, nil
		}
		if s.inner.Name() != aesgcm.Name {
			return json.Marshal(fmt.Sprintf("(encoded: codec %s: %v)", s.inner.Name(), err))
		}
		if !errors.Is(err, aesgcm.ErrUnknownKey) {
			return json.Marshal(fmt.Sprintf("(encrypted: %v)", err))
		}
	}
	id, err := aesgcm.KeyID(data)
	if err != nil {
		return json.Marshal(fmt.Sprintf("(encrypted: %v)", err))
	}
	return json.Marshal(fmt.Sprintf("(encrypted: key %s)", id))
}

// shown returns the codec that e's commands show payloads with.
func (e *env) shown() backend.Codec { return shownCodec{inner: e.app.Codec} }

// countEncrypted counts the payloads of history that shownCodec could not
// decrypt.
func countEncrypted(history []backend.Event) int {
	n := 0
	for _, e := range history {
		if bytes.HasPrefix(e.Payload, []byte(`"(encrypted: `)) {
			n++
		}
	}
	return n
}
