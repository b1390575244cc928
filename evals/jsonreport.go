package evals

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes r as indented JSON, the form ReadReport reads and a
// baseline file holds.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadReport reads a report WriteJSON wrote. Fields it does not know are
// ignored, so a report written by a newer version still reads; a case
// without a name or a status is an error.
func ReadReport(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	for i, c := range r.Cases {
		if c.Name == "" || c.Status == "" {
			return nil, fmt.Errorf("read report: case %d has no name or no status", i+1)
		}
	}
	return &r, nil
}
