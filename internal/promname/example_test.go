package promname_test

import (
	"fmt"

	"github.com/cairn-dev/cairn/internal/promname"
)

// The series Prometheus stores for a histogram in seconds and a counter of
// steps, and the label of an attribute.
func Example() {
	for _, s := range promname.Series("gen_ai.client.operation.duration", "s", promname.Histogram) {
		fmt.Println(s)
	}
	fmt.Println(promname.Metric("cairn.steps", "{step}", promname.Counter))
	fmt.Println(promname.Label("cairn.step.kind"))
	// Output:
	// gen_ai_client_operation_duration_seconds_bucket
	// gen_ai_client_operation_duration_seconds_sum
	// gen_ai_client_operation_duration_seconds_count
	// cairn_steps_total
	// cairn_step_kind
}
