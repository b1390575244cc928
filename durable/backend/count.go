package backend

import "context"

// RunCounter is an optional capability of a Store: it counts the runs by
// status, and by workflow, reading of each run no more than those two
// fields, so that a console can show the counts over many thousands of
// runs without reading every record (ListRuns).
type RunCounter interface {
	// CountRuns counts the runs the store holds, as ListRuns with no
	// filter would list them at the moment each is read.
	CountRuns(ctx context.Context) (RunCounts, error)
}

// RunCounts are the numbers of runs by status and by workflow.
type RunCounts struct {
	Total      int            `json:"total"`
	ByStatus   map[Status]int `json:"by_status"`
	ByWorkflow map[string]int `json:"by_workflow"`
}

// Add counts a run.
func (c *RunCounts) Add(status Status, workflow string) {
	if c.ByStatus == nil {
		c.ByStatus = map[Status]int{}
	}
	if c.ByWorkflow == nil {
		c.ByWorkflow = map[string]int{}
	}
	c.Total++
	c.ByStatus[status]++
	c.ByWorkflow[workflow]++
}
