package evals

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// MarshalJSON writes m as a dataset holds it: {"$any": true},
// {"$regex": "..."}, {"$absent": true}, or the plain value Equal (null
// when Equal is empty). A Matcher with more than one of Any, Regex,
// Absent and Equal set is an error.
func (m Matcher) MarshalJSON() ([]byte, error) {
	set := 0
	for _, b := range []bool{m.Any, m.Regex != "", m.Absent, len(m.Equal) > 0} {
		if b {
			set++
		}
	}
	if set > 1 {
		return nil, errors.New("matcher: more than one of $any, $regex, $absent and a value")
	}
	switch {
	case m.Any:
		return []byte(`{"$any":true}`), nil
	case m.Absent:
		return []byte(`{"$absent":true}`), nil
	case m.Regex != "":
		re, err := json.Marshal(m.Regex)
		if err != nil {
			return nil, err
		}
		return append(append([]byte(`{"$regex":`), re...), '}'), nil
	case len(m.Equal) == 0:
		return []byte("null"), nil
	}
	if !json.Valid(m.Equal) {
		return nil, fmt.Errorf("matcher: value is not JSON: %q", m.Equal)
	}
	return m.Equal, nil
}

// UnmarshalJSON reads a matcher as a dataset holds it. An object whose
// keys begin with "$" must have exactly one key, one of {"$any": true},
// {"$regex": "..."} (the expression must compile, RE2) and
// {"$absent": true}; any other JSON value, an object without "$" keys
// included, is a plain value to compare, kept in Equal as written
// (compacted).
func (m *Matcher) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	*m = Matcher{}
	if len(data) > 0 && data[0] == '{' {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			return err
		}
		special := 0
		for k := range fields {
			if strings.HasPrefix(k, "$") {
				special++
			}
		}
		if special > 0 {
			return m.unmarshalSpecial(fields)
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return err
	}
	m.Equal = buf.Bytes()
	return nil
}

// unmarshalSpecial reads a {"$...": ...} matcher.
func (m *Matcher) unmarshalSpecial(fields map[string]json.RawMessage) error {
	if len(fields) != 1 {
		return errors.New(`matcher: an object with a "$" key must have exactly one key: $any, $regex or $absent`)
	}
	for k, v := range fields {
		switch k {
		case "$any", "$absent":
			var b bool
			if err := json.Unmarshal(v, &b); err != nil || !b {
				return fmt.Errorf("matcher: %s takes true", k)
			}
			m.Any, m.Absent = k == "$any", k == "$absent"
		case "$regex":
			if err := json.Unmarshal(v, &m.Regex); err != nil || m.Regex == "" {
				return errors.New("matcher: $regex takes a non-empty string")
			}
			if _, err := regexp.Compile(m.Regex); err != nil {
				return fmt.Errorf("matcher: $regex: %w", err)
			}
		default:
			return fmt.Errorf("matcher: unknown key %q (want $any, $regex or $absent)", k)
		}
	}
	return nil
}

// String writes d as time.Duration does: "1.5s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a string, "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration as a string time.ParseDuration takes
// ("1.5s", "2m", "300ms"), or as a number of seconds (1.5); null leaves
// d as it is. A negative
// duration, or one too long for a time.Duration, is an error.
func (d *Duration) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil // as encoding/json leaves a value for null
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want a duration such as \"1.5s\" or a number of seconds", s)
		}
		if v < 0 {
			return fmt.Errorf("duration %q: negative", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(data, &secs); err != nil {
		return fmt.Errorf("duration %s: want a duration such as \"1.5s\" or a number of seconds", data)
	}
	if secs < 0 || math.IsNaN(secs) || secs*float64(time.Second) >= math.MaxInt64 {
		return fmt.Errorf("duration %s: out of range", data)
	}
	*d = Duration(math.Round(secs * float64(time.Second)))
	return nil
}
