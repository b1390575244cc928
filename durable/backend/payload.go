package backend

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// wirePayload is the versioned encoding of a payload kept outside an
// event (RunInfo.Awaiting): the JSON itself, or, when a Codec transformed
// it, a base64 string and the codec's name.
type wirePayload struct {
	V       int             `json:"v"`
	Codec   string          `json:"codec,omitempty"`
	Payload json.RawMessage `json:"payload"`
}

// plainPrefix begins what EncodePayload writes without a codec.
const plainPrefix = `{"v":1,"payload":`

// EncodePayload encodes a JSON payload for a record field, passing it
// through codec when codec is not nil, as EncodeEvent does an event's. The
// result is JSON text.
func EncodePayload(payload []byte, codec Codec) ([]byte, error) {
	w := wirePayload{V: eventVersion, Payload: payload}
	if codec != nil {
		enc, err := codec.Encode(payload)
		if err != nil {
			return nil, fmt.Errorf("encode payload with codec %s: %w", codec.Name(), err)
		}
		w.Codec = codec.Name()
		w.Payload, _ = json.Marshal(base64.StdEncoding.EncodeToString(enc))
	}
	data, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return data, nil
}

// DecodePayload decodes what EncodePayload encoded. Data that is not such
// an encoding, an unknown version, or a payload that codec cannot decode
// (or that is not JSON once decoded) gives an error wrapping
// ErrCorruptHistory; it never panics.
func DecodePayload(data []byte, codec Codec) (json.RawMessage, error) {
	// The form EncodePayload writes without a codec is read without a
	// decoder: lists of thousands of records read it.
	if len(data) > len(plainPrefix)+1 && string(data[:len(plainPrefix)]) == plainPrefix && data[len(data)-1] == '}' {
		if p := data[len(plainPrefix) : len(data)-1]; json.Valid(p) {
			return p, nil
		}
	}
	var w wirePayload
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrCorruptHistory, err)
	}
	switch {
	case w.V == 0:
		return nil, fmt.Errorf("%w: payload has no encoding version", ErrCorruptHistory)
	case w.V > eventVersion:
		return nil, fmt.Errorf("%w: payload encoding version %d is newer than this code's %d", ErrUnknownEvent, w.V, eventVersion)
	case len(w.Payload) == 0:
		return nil, fmt.Errorf("%w: payload is missing", ErrCorruptHistory)
	case w.Codec == "":
		return w.Payload, nil
	case codec == nil || codec.Name() != w.Codec:
		return nil, fmt.Errorf("%w: payload needs codec %q", ErrCorruptHistory, w.Codec)
	}
	var s string
	if err := json.Unmarshal(w.Payload, &s); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrCorruptHistory, err)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrCorruptHistory, err)
	}
	out, err := codec.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: codec %s: %v", ErrCorruptHistory, w.Codec, err)
	}
	if !json.Valid(out) {
		return nil, fmt.Errorf("%w: payload is not JSON after decoding", ErrCorruptHistory)
	}
	return out, nil
}
