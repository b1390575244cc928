package otlptest

import (
	"slices"

	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// Metric is one received metric, decoded from OTLP into plain values. A
// metric exported several times (periodically, then at shutdown) arrives
// once per export.
type Metric struct {
	Name, Unit, Description string
	// Kind is "sum", "gauge", "histogram", "exponential_histogram",
	// "summary", or "unknown".
	Kind     string
	Points   []Point
	Resource map[string]any // resource attributes, typed as Span.Attributes
	Scope    string         // instrumentation scope name
}

// Point is one data point of a Metric.
type Point struct {
	Attributes map[string]any // typed as Span.Attributes
	// Value is a sum's or a gauge's value (an integer one converted), or
	// a histogram's or a summary's sum.
	Value float64
	// Count is how many measurements a histogram or a summary holds; 0
	// for a sum or a gauge.
	Count uint64
}

// receivedMetric is a stored metric with what it needs from its
// enclosing messages.
type receivedMetric struct {
	metric   *metricpb.Metric
	resource *resourcepb.Resource
	scope    string
}

// Metrics returns all metrics received so far, in arrival order. Every
// call decodes fresh values.
func (r *Receiver) Metrics() []Metric {
	r.mu.Lock()
	recs := slices.Clone(r.metrics)
	r.mu.Unlock()
	out := make([]Metric, len(recs))
	for i, rec := range recs {
		out[i] = rec.decode()
	}
	return out
}

func (rec receivedMetric) decode() Metric {
	m := rec.metric
	out := Metric{Name: m.GetName(), Unit: m.GetUnit(), Description: m.GetDescription(),
		Resource: attributes(rec.resource.GetAttributes()), Scope: rec.scope}
	number := func(dps []*metricpb.NumberDataPoint) {
		for _, dp := range dps {
			v := dp.GetAsDouble()
			if _, ok := dp.GetValue().(*metricpb.NumberDataPoint_AsInt); ok {
				v = float64(dp.GetAsInt())
			}
			out.Points = append(out.Points, Point{Attributes: attributes(dp.GetAttributes()), Value: v})
		}
	}
	switch d := m.GetData().(type) {
	case *metricpb.Metric_Sum:
		out.Kind = "sum"
		number(d.Sum.GetDataPoints())
	case *metricpb.Metric_Gauge:
		out.Kind = "gauge"
		number(d.Gauge.GetDataPoints())
	case *metricpb.Metric_Histogram:
		out.Kind = "histogram"
		for _, dp := range d.Histogram.GetDataPoints() {
			out.Points = append(out.Points, Point{Attributes: attributes(dp.GetAttributes()), Value: dp.GetSum(), Count: dp.GetCount()})
		}
	case *metricpb.Metric_ExponentialHistogram:
		out.Kind = "exponential_histogram"
		for _, dp := range d.ExponentialHistogram.GetDataPoints() {
			out.Points = append(out.Points, Point{Attributes: attributes(dp.GetAttributes()), Value: dp.GetSum(), Count: dp.GetCount()})
		}
	case *metricpb.Metric_Summary:
		out.Kind = "summary"
		for _, dp := range d.Summary.GetDataPoints() {
			out.Points = append(out.Points, Point{Attributes: attributes(dp.GetAttributes()), Value: dp.GetSum(), Count: dp.GetCount()})
		}
	default:
		out.Kind = "unknown" // no data, or a kind newer than this receiver
	}
	return out
}
