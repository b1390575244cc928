package evals_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/evals"
)

func TestMatcherJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want evals.Matcher
		out  string // "" means the same as in
	}{
		{in: `"A-1001"`, want: evals.Matcher{Equal: json.RawMessage(`"A-1001"`)}},
		{in: `120`, want: evals.Matcher{Equal: json.RawMessage(`120`)}},
		{in: `null`, want: evals.Matcher{Equal: json.RawMessage(`null`)}},
		{in: `[1, 2]`, want: evals.Matcher{Equal: json.RawMessage(`[1,2]`)}, out: `[1,2]`},
		{in: `{"currency": "EUR"}`, want: evals.Matcher{Equal: json.RawMessage(`{"currency":"EUR"}`)}, out: `{"currency":"EUR"}`},
		{in: `{"$any": true}`, want: evals.Matcher{Any: true}, out: `{"$any":true}`},
		{in: `{"$absent":true}`, want: evals.Matcher{Absent: true}},
		{in: `{"$regex":"^A-\\d+$"}`, want: evals.Matcher{Regex: `^A-\d+$`}},
	} {
		var m evals.Matcher
		require.NoError(t, json.Unmarshal([]byte(tc.in), &m), "unmarshal %s", tc.in)
		assert.Equal(t, tc.want, m, "unmarshal %s", tc.in)
		out, err := json.Marshal(m)
		require.NoError(t, err, "marshal %s", tc.in)
		want := tc.out
		if want == "" {
			want = tc.in
		}
		assert.Equal(t, want, string(out), "marshal %s", tc.in)
	}
}

func TestMatcherJSONErrors(t *testing.T) {
	for in, want := range map[string]string{
		`{"$any": false}`:              "matcher: $any takes true",
		`{"$absent": 1}`:               "matcher: $absent takes true",
		`{"$regex": ""}`:               "matcher: $regex takes a non-empty string",
		`{"$regex": "("}`:              "matcher: $regex: error parsing regexp: missing closing ): `(`",
		`{"$any": true, "x": 1}`:       `matcher: an object with a "$" key must have exactly one key: $any, $regex or $absent`,
		`{"$any": true, "$absent": 1}`: `matcher: an object with a "$" key must have exactly one key: $any, $regex or $absent`,
		`{"$eq": 1}`:                   `matcher: unknown key "$eq" (want $any, $regex or $absent)`,
	} {
		var m evals.Matcher
		assert.EqualError(t, json.Unmarshal([]byte(in), &m), want, "unmarshal %s", in)
	}
	_, err := json.Marshal(evals.Matcher{Any: true, Regex: "x"})
	assert.ErrorContains(t, err, "more than one of", "a matcher that is two things")
}

func TestMatcherInArgs(t *testing.T) {
	var call evals.ExpectedCall
	require.NoError(t, json.Unmarshal([]byte(`{"tool":"refund","args":{"order_id":{"$regex":"^A-"},"amount":120,"idempotency_key":{"$any":true}}}`), &call))
	assert.Equal(t, evals.ExpectedCall{Tool: "refund", Args: map[string]evals.Matcher{
		"order_id":        {Regex: "^A-"},
		"amount":          {Equal: json.RawMessage("120")},
		"idempotency_key": {Any: true},
	}}, call)
	out, err := json.Marshal(call)
	require.NoError(t, err)
	assert.JSONEq(t, `{"tool":"refund","args":{"order_id":{"$regex":"^A-"},"amount":120,"idempotency_key":{"$any":true}}}`, string(out))
}

func TestDurationJSON(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`"1.5s"`:  1500 * time.Millisecond,
		`"2m"`:    2 * time.Minute,
		`"0s"`:    0,
		`1.5`:     1500 * time.Millisecond,
		`30`:      30 * time.Second,
		` 0.001 `: time.Millisecond,
	} {
		var d evals.Duration
		require.NoError(t, json.Unmarshal([]byte(in), &d), "unmarshal %s", in)
		assert.Equal(t, want, time.Duration(d), "unmarshal %s", in)
		out, err := json.Marshal(d)
		require.NoError(t, err)
		var back evals.Duration
		require.NoError(t, json.Unmarshal(out, &back), "round trip of %s through %s", in, out)
		assert.Equal(t, d, back, "round trip of %s through %s", in, out)
	}
	out, err := json.Marshal(evals.Duration(1500 * time.Millisecond))
	require.NoError(t, err)
	assert.Equal(t, `"1.5s"`, string(out))
	for in, want := range map[string]string{
		`"soon"`: `duration "soon": want a duration such as "1.5s" or a number of seconds`,
		`"-1s"`:  `duration "-1s": negative`,
		`-2`:     `duration -2: out of range`,
		`1e300`:  `duration 1e300: out of range`,
		`true`:   `duration true: want a duration such as "1.5s" or a number of seconds`,
	} {
		var d evals.Duration
		assert.EqualError(t, json.Unmarshal([]byte(in), &d), want, "unmarshal %s", in)
	}
}

// FuzzMatcherJSON checks that whatever a matcher decodes from, it
// encodes to JSON that decodes to the same matcher.
func FuzzMatcherJSON(f *testing.F) {
	for _, s := range []string{`"A-1001"`, `120`, `null`, `{"a":[1,{"b":2}]}`, `{"$any":true}`, `{"$absent":true}`,
		`{"$regex":"^A-\\d+$"}`, `{"$regex":"("}`, `{"$any":true,"x":1}`, `{"$":1}`, `[`, `"\u00e9"`, `  true `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m evals.Matcher
		if json.Unmarshal(data, &m) != nil {
			return
		}
		out, err := json.Marshal(m)
		require.NoError(t, err, "marshal what %q decoded to", data)
		var back evals.Matcher
		require.NoError(t, json.Unmarshal(out, &back), "unmarshal %q, from %q", out, data)
		// encoding/json escapes HTML characters in what MarshalJSON
		// returns: the value is the same JSON, not the same bytes.
		if len(m.Equal) > 0 {
			assert.Equal(t, jsonValue(t, m.Equal), jsonValue(t, back.Equal), "round trip of %q through %q", data, out)
			m.Equal, back.Equal = nil, nil
		}
		assert.Equal(t, m, back, "round trip of %q through %q", data, out)
	})
}

// FuzzDurationJSON checks that a decoded duration is never negative and
// survives a round trip.
func FuzzDurationJSON(f *testing.F) {
	for _, s := range []string{`"1.5s"`, `"2h45m"`, `1.5`, `0`, `-1`, `"-1s"`, `1e300`, `"1e3s"`, `"x"`, `null`, `9223372036.854775807`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d evals.Duration
		if json.Unmarshal(data, &d) != nil {
			return
		}
		require.GreaterOrEqual(t, d, evals.Duration(0), "%q decoded to a negative duration", data)
		out, err := json.Marshal(d)
		require.NoError(t, err)
		var back evals.Duration
		require.NoError(t, json.Unmarshal(out, &back), "unmarshal %q, from %q", out, data)
		assert.Equal(t, d, back, "round trip of %q through %q", data, out)
	})
}

// jsonValue decodes JSON with its numbers as written.
func jsonValue(t *testing.T, data []byte) any {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "decode %q", data)
	return v
}
