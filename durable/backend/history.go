package backend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// MarshalHistory encodes events as a JSON array with one event per line,
// in the versioned event encoding: the format of exported histories and
// golden files.
func MarshalHistory(events []Event) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("[\n")
	for i, e := range events {
		data, err := EncodeEvent(e, nil)
		if err != nil {
			return nil, err
		}
		buf.Write(data)
		if i < len(events)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("]\n")
	return buf.Bytes(), nil
}

// UnmarshalHistory decodes a history encoded by MarshalHistory, checking
// every event as a store's history is checked.
func UnmarshalHistory(r io.Reader) ([]Event, error) {
	var raw []json.RawMessage
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: history is not a JSON array: %v", ErrCorruptHistory, err)
	}
	entries := make([][]byte, len(raw))
	for i, r := range raw {
		entries[i] = r
	}
	return DecodeHistory(entries, 1, nil)
}
