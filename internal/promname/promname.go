// Package promname gives the names under which Prometheus stores the
// OpenTelemetry metrics it receives over OTLP, through its OTLP receiver or
// an OpenTelemetry Collector's Prometheus exporters, with their default
// translation (Prometheus's UnderscoreEscapingWithSuffixes), as the
// OpenTelemetry "Prometheus and OpenMetrics Compatibility" specification
// describes it:
//
//   - characters outside [a-zA-Z0-9:] become "_", and runs of "_" one;
//   - the unit is appended as a word, "s" as "seconds", "By" as "bytes",
//     "{request}/s" as "per_second", unless the name holds it already; a
//     unit in braces ({step}, {token}) is an annotation and adds nothing;
//   - a monotonic sum (a counter) ends in "_total", a gauge of unit "1" in
//     "_ratio";
//   - an explicit-bucket histogram is stored as three series,
//     name_bucket (with the "le" label), name_sum and name_count.
//
// ParseQuery finds the metric and label names a PromQL expression uses.
// The package is for cairn's tests, which check that the dashboard in
// docs/grafana queries only metrics and labels cairn emits.
package promname

import (
	"slices"
	"strings"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Kind is how Prometheus types a metric, which decides its suffixes.
type Kind int

// The kinds of metric.
const (
	Gauge                Kind = iota // a gauge or a non-monotonic sum
	Counter                          // a monotonic sum
	Histogram                        // an explicit-bucket histogram
	ExponentialHistogram             // stored as a native histogram, under its bare name
)

// KindOf returns the kind of an OpenTelemetry SDK aggregation, and false
// for one Prometheus does not store (a summary).
func KindOf(data metricdata.Aggregation) (Kind, bool) {
	switch d := data.(type) {
	case metricdata.Gauge[int64], metricdata.Gauge[float64]:
		return Gauge, true
	case metricdata.Sum[int64]:
		return sumKind(d.IsMonotonic), true
	case metricdata.Sum[float64]:
		return sumKind(d.IsMonotonic), true
	case metricdata.Histogram[int64], metricdata.Histogram[float64]:
		return Histogram, true
	case metricdata.ExponentialHistogram[int64], metricdata.ExponentialHistogram[float64]:
		return ExponentialHistogram, true
	}
	return 0, false
}

func sumKind(monotonic bool) Kind {
	if monotonic {
		return Counter
	}
	return Gauge
}

// Metric returns the Prometheus name of the metric called name, of the
// given unit (UCUM, as OpenTelemetry instruments declare it) and kind.
func Metric(name, unit string, kind Kind) string {
	tokens := strings.FieldsFunc(name, invalid)
	main, per := unitWords(unit)
	if main != "" && !slices.Contains(tokens, main) {
		tokens = append(tokens, main)
	}
	if per != "" && !slices.Contains(tokens, per) {
		tokens = append(tokens, per)
	}
	switch {
	case kind == Counter:
		tokens = append(slices.DeleteFunc(tokens, is("total")), "total")
	case kind == Gauge && unit == "1":
		tokens = append(slices.DeleteFunc(tokens, is("ratio")), "ratio")
	}
	out := strings.Join(tokens, "_")
	if out != "" && out[0] >= '0' && out[0] <= '9' {
		out = "_" + out
	}
	return out
}

// Series returns the names of the series Prometheus stores for a metric:
// the metric's name, or for an explicit-bucket histogram its _bucket,
// _sum and _count series.
func Series(name, unit string, kind Kind) []string {
	m := Metric(name, unit, kind)
	if kind == Histogram {
		return []string{m + "_bucket", m + "_sum", m + "_count"}
	}
	return []string{m}
}

// Label returns the Prometheus name of an attribute key: characters
// outside [a-zA-Z0-9_] become "_", runs of "_" one, and a key that would
// start with a digit gets "key_" in front.
func Label(key string) string {
	var b strings.Builder
	underscore := false
	for _, r := range key {
		if r != '_' && (invalid(r) || r == ':') {
			r = '_'
		}
		if r == '_' && underscore {
			continue
		}
		underscore = r == '_'
		b.WriteRune(r)
	}
	out := b.String()
	if out != "" && out[0] >= '0' && out[0] <= '9' {
		out = "key_" + out
	}
	return out
}

// unitWords returns the words a unit adds to a name: its main unit and,
// for a rate ("By/s"), its "per_" unit. Annotations in braces add nothing;
// "1" adds nothing (a gauge of it gets _ratio instead).
func unitWords(unit string) (main, per string) {
	mainUnit, perUnit, _ := strings.Cut(unit, "/")
	if u := strings.TrimSpace(mainUnit); u != "" && !strings.ContainsAny(u, "{}") {
		main = cleanUnit(unitWord(u))
	}
	if u := strings.TrimSpace(perUnit); u != "" && !strings.ContainsAny(u, "{}") {
		per = cleanUnit("per_" + perUnitWord(u))
		if per == "per" {
			per = ""
		}
	}
	return main, per
}

// cleanUnit makes a unit's words a name's characters, without a leading
// or trailing "_".
func cleanUnit(u string) string {
	var b strings.Builder
	underscore := false
	for _, r := range u {
		if invalid(r) {
			r = '_'
		}
		if r == '_' && underscore {
			continue
		}
		underscore = r == '_'
		b.WriteRune(r)
	}
	return strings.Trim(b.String(), "_")
}

// invalid reports whether r may not appear in a Prometheus metric name
// (outside [a-zA-Z0-9:]); it separates a name's words.
func invalid(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ':')
}

func is(word string) func(string) bool { return func(s string) bool { return s == word } }

// unitWord returns the word of a UCUM unit OpenTelemetry uses, or the
// unit as written if it has none.
func unitWord(u string) string {
	switch u {
	case "d":
		return "days"
	case "h":
		return "hours"
	case "min":
		return "minutes"
	case "s":
		return "seconds"
	case "ms":
		return "milliseconds"
	case "us":
		return "microseconds"
	case "ns":
		return "nanoseconds"
	case "By":
		return "bytes"
	case "KiBy":
		return "kibibytes"
	case "MiBy":
		return "mebibytes"
	case "GiBy":
		return "gibibytes"
	case "TiBy":
		return "tibibytes"
	case "KBy":
		return "kilobytes"
	case "MBy":
		return "megabytes"
	case "GBy":
		return "gigabytes"
	case "TBy":
		return "terabytes"
	case "m":
		return "meters"
	case "V":
		return "volts"
	case "A":
		return "amperes"
	case "J":
		return "joules"
	case "W":
		return "watts"
	case "g":
		return "grams"
	case "Cel":
		return "celsius"
	case "Hz":
		return "hertz"
	case "1":
		return ""
	case "%":
		return "percent"
	}
	return u
}

// perUnitWord returns the word of a rate's denominator unit, or the unit
// as written if it has none.
func perUnitWord(u string) string {
	switch u {
	case "s":
		return "second"
	case "m":
		return "minute"
	case "h":
		return "hour"
	case "d":
		return "day"
	case "w":
		return "week"
	case "mo":
		return "month"
	case "y":
		return "year"
	}
	return u
}
