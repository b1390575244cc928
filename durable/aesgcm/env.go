package aesgcm

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// EnvKeys names the environment variable FromEnv reads.
const EnvKeys = "CAIRN_CODEC_KEYS"

// ParseKeys parses keys written as "id:base64key,id:base64key", the first
// being the current key and the others older ones, and returns a Codec with
// them. Spaces around entries are ignored; the key is standard or URL
// base64 of 32 bytes (for example from `openssl rand -base64 32`).
func ParseKeys(s string) (*Codec, error) {
	var keys []Key
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, b64, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("aesgcm: key entry %d: want id:base64key", len(keys)+1)
		}
		id = strings.TrimSpace(id)
		secret, err := decodeBase64(strings.TrimSpace(b64))
		if err != nil {
			// The error does not quote the entry: it holds the secret.
			return nil, fmt.Errorf("aesgcm: key %q: not base64", id)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("aesgcm: no keys")
	}
	return New(keys[0], keys[1:]...)
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64")
}

// FromEnv returns the Codec that the variable EnvKeys describes (see
// ParseKeys), read with getenv (os.Getenv if nil), or nil and no error
// when the variable is unset or empty: payloads are then not encrypted.
// Check for nil before storing the result in a backend.Codec: a nil
// *Codec in an interface is not a nil interface.
func FromEnv(getenv func(string) string) (*Codec, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	s := strings.TrimSpace(getenv(EnvKeys))
	if s == "" {
		return nil, nil
	}
	c, err := ParseKeys(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvKeys, err)
	}
	return c, nil
}
