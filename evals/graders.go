package evals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	validator "github.com/santhosh-tekuri/jsonschema/v6"
)

// Func makes a custom grader of fn, named name. fn must be safe for
// concurrent use; it returns an error only when it cannot grade.
func Func(name string, fn func(ctx context.Context, o *Outcome) (Score, error)) Grader {
	return funcGrader{name: name, fn: fn}
}

type funcGrader struct {
	name string
	fn   func(ctx context.Context, o *Outcome) (Score, error)
}

func (g funcGrader) Name() string { return g.name }
func (g funcGrader) Grade(ctx context.Context, o *Outcome) (Score, error) {
	return g.fn(ctx, o)
}

// verdict is a score of value against a threshold, labelled pass or fail.
func verdict(value, threshold float64, explanation string) Score {
	s := Score{Value: value, Pass: value >= threshold, Explanation: explanation, Label: "fail"}
	if s.Pass {
		s.Label = "pass"
	}
	return s
}

// Equals grades the final answer: 1 if, spaces trimmed at both ends, it
// is text, else 0.
func Equals(text string) Grader {
	want := strings.TrimSpace(text)
	return Func("equals", func(_ context.Context, o *Outcome) (Score, error) {
		got := strings.TrimSpace(o.Text)
		if got == want {
			return verdict(1, 1, ""), nil
		}
		return verdict(0, 1, fmt.Sprintf("answer %q, want %q", clip(got), clip(want))), nil
	})
}

// Contains grades the final answer by the share of texts it contains;
// it passes when it contains them all.
func Contains(texts ...string) Grader {
	texts = slices.Clone(texts)
	return Func("contains", func(_ context.Context, o *Outcome) (Score, error) {
		if len(texts) == 0 {
			return verdict(1, 1, ""), nil
		}
		var missing []string
		for _, t := range texts {
			if !strings.Contains(o.Text, t) {
				missing = append(missing, fmt.Sprintf("%q", t))
			}
		}
		value := float64(len(texts)-len(missing)) / float64(len(texts))
		if len(missing) == 0 {
			return verdict(value, 1, ""), nil
		}
		return verdict(value, 1, fmt.Sprintf("answer %q lacks %s", clip(o.Text), strings.Join(missing, ", "))), nil
	})
}

// Regex grades the final answer: 1 if it matches pattern (RE2, anywhere
// in the text unless anchored), else 0. A pattern that does not compile
// is an error here, not when grading.
func Regex(pattern string) (Grader, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("regex grader: %w", err)
	}
	return Func("regex", func(_ context.Context, o *Outcome) (Score, error) {
		if re.MatchString(o.Text) {
			return verdict(1, 1, ""), nil
		}
		return verdict(0, 1, fmt.Sprintf("answer %q does not match /%s/", clip(o.Text), pattern)), nil
	}), nil
}

// structured is the structured answer of an outcome: Output, or the text
// when the agent has no Output type and answered in JSON.
func structured(o *Outcome) ([]byte, bool) {
	if len(o.Output) > 0 {
		return o.Output, true
	}
	t := strings.TrimSpace(o.Text)
	if t != "" && json.Valid([]byte(t)) {
		return []byte(t), true
	}
	return nil, false
}

// JSONSchema grades the structured answer (Outcome.Output, or the final
// text if it is JSON and there is no Output): 1 if it is valid against
// schema, else 0, with the violations as the explanation. A schema that
// does not compile is an error here.
func JSONSchema(schema json.RawMessage) (Grader, error) {
	doc, err := validator.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("json schema grader: %w", err)
	}
	c := validator.NewCompiler()
	c.DefaultDraft(validator.Draft2020)
	c.AssertFormat()
	const url = "https://cairn.invalid/eval-output.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("json schema grader: %w", err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("json schema grader: %w", err)
	}
	return Func("json_schema", func(_ context.Context, o *Outcome) (Score, error) {
		out, ok := structured(o)
		if !ok {
			return verdict(0, 1, "no structured answer"), nil
		}
		v, err := validator.UnmarshalJSON(bytes.NewReader(out))
		if err != nil {
			return verdict(0, 1, fmt.Sprintf("structured answer is not JSON: %v", err)), nil
		}
		if err := sch.Validate(v); err != nil {
			var ve *validator.ValidationError
			msg := err.Error()
			if errors.As(err, &ve) {
				msg = strings.TrimSpace(strings.ReplaceAll(fmt.Sprintf("%v", ve), "\n", "; "))
			}
			return verdict(0, 1, "schema violated: "+msg), nil
		}
		return verdict(1, 1, ""), nil
	}), nil
}

// FieldsEqual grades the structured answer (as JSONSchema reads it)
// field by field: fields is a JSON object, and each of its fields must be
// in the answer with an equal JSON value (key order and spacing do not
// matter). The score is the share of fields equal; it passes when all
// are. Fields not named are not compared.
func FieldsEqual(fields json.RawMessage) (Grader, error) {
	var want map[string]json.RawMessage
	if err := json.Unmarshal(fields, &want); err != nil {
		return nil, fmt.Errorf("fields grader: want a JSON object: %w", err)
	}
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	slices.Sort(names)
	return Func("fields", func(_ context.Context, o *Outcome) (Score, error) {
		if len(names) == 0 {
			return verdict(1, 1, ""), nil
		}
		out, ok := structured(o)
		var got map[string]json.RawMessage
		if !ok || json.Unmarshal(out, &got) != nil {
			return verdict(0, 1, "no structured answer (a JSON object)"), nil
		}
		var diffs []string
		for _, k := range names {
			g, present := got[k]
			switch {
			case !present:
				diffs = append(diffs, fmt.Sprintf("%s missing, want %s", k, compact(want[k])))
			case !jsonEqual(g, want[k]):
				diffs = append(diffs, fmt.Sprintf("%s = %s, want %s", k, compact(g), compact(want[k])))
			}
		}
		value := float64(len(names)-len(diffs)) / float64(len(names))
		return verdict(value, 1, strings.Join(diffs, "; ")), nil
	}), nil
}

// jsonEqual compares two JSON values decoded, so that key order and
// spacing do not matter; numbers compare by their text value.
func jsonEqual(a, b json.RawMessage) bool {
	va, erra := decodeJSON(a)
	vb, errb := decodeJSON(b)
	if erra != nil || errb != nil {
		return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b))
	}
	return reflect.DeepEqual(va, vb)
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return normalizeNumbers(v), nil
}

// normalizeNumbers turns json.Numbers into float64 where that is exact
// enough to compare 1 and 1.0 as equal.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	}
	return v
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// clip shortens a text for an explanation.
func clip(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// Prices are what tokens cost, per million, in the unit budgets' Cost is
// given in (dollars, euros, ...).
type Prices struct {
	Input  float64 `json:"input"`
	Output float64 `json:"output"`
}

// Cost is what a run that used these tokens cost.
func (p Prices) Cost(inputTokens, outputTokens int) float64 {
	return (float64(inputTokens)*p.Input + float64(outputTokens)*p.Output) / 1e6
}

// BudgetGrader grades what a run used against b: each bound set (tokens,
// cost at prices, turns, latency) is met or not; the score is the share
// met and it passes when all are. A Cost bound with zero prices cannot be
// checked: the grade is an error.
func BudgetGrader(b Budget, prices Prices) Grader {
	return Func("budget", func(_ context.Context, o *Outcome) (Score, error) {
		var checked, met int
		var over []string
		check := func(ok bool, what string) {
			checked++
			if ok {
				met++
			} else {
				over = append(over, what)
			}
		}
		tokens := o.Usage.InputTokens + o.Usage.OutputTokens
		if b.Tokens > 0 {
			check(tokens <= b.Tokens, fmt.Sprintf("%d tokens, budget %d", tokens, b.Tokens))
		}
		if b.Cost > 0 {
			if prices == (Prices{}) {
				return Score{}, errors.New("budget: a cost bound needs prices (Runner.Prices)")
			}
			cost := prices.Cost(o.Usage.InputTokens, o.Usage.OutputTokens)
			check(cost <= b.Cost, fmt.Sprintf("cost %.6g, budget %.6g", cost, b.Cost))
		}
		if b.Turns > 0 {
			check(o.Turns <= b.Turns, fmt.Sprintf("%d turns, budget %d", o.Turns, b.Turns))
		}
		if b.Latency > 0 {
			check(o.Latency <= time.Duration(b.Latency),
				fmt.Sprintf("latency %v, budget %v", o.Latency.Round(time.Millisecond), time.Duration(b.Latency)))
		}
		if checked == 0 {
			return verdict(1, 1, ""), nil
		}
		return verdict(float64(met)/float64(checked), 1, strings.Join(over, "; ")), nil
	})
}

// Graders turns what e expects into graders, one per field set, in the
// order of Expect's fields. A budget's cost is priced at zero: the runner
// uses its own graders(prices) instead. Bad patterns and schemas are
// errors.
func (e Expect) Graders() ([]Grader, error) { return e.graders(Prices{}) }

func (e Expect) graders(prices Prices) ([]Grader, error) {
	var gs []Grader
	if e.Text != "" {
		gs = append(gs, Equals(e.Text))
	}
	if len(e.Contains) > 0 {
		gs = append(gs, Contains(e.Contains...))
	}
	if e.Regex != "" {
		g, err := Regex(e.Regex)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	if len(e.Output) > 0 {
		g, err := FieldsEqual(e.Output)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	if len(e.Schema) > 0 {
		g, err := JSONSchema(e.Schema)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	if e.Trajectory != nil {
		g, err := TrajectoryGrader(*e.Trajectory)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	if e.Budget != nil {
		gs = append(gs, BudgetGrader(*e.Budget, prices))
	}
	return gs, nil
}
