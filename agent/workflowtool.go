package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/tools"
)

// WorkflowTool is a tool whose body is workflow code rather than an
// activity: it may wait durably (durable.Sleep), wait for signals, run
// activities and child workflows, and it is replayed, not run again, after
// a crash. Like all workflow code it must be deterministic and do no I/O
// of its own. Make one with NewWorkflowTool.
type WorkflowTool struct {
	schema *tools.Tool // name, description, schema and argument checks
	run    func(ctx durable.Context, args json.RawMessage) (tools.Result, error)
}

// NewWorkflowTool makes a workflow tool of fn. Its arguments are described
// and checked as those of tools.New; a returned error is shown to the
// model, except durable.ErrCanceled, which stops the run.
func NewWorkflowTool[In, Out any](name, description string, fn func(durable.Context, In) (Out, error)) (*WorkflowTool, error) {
	schema, err := tools.New(name, description, func(context.Context, In) (struct{}, error) { return struct{}{}, nil })
	if err != nil {
		return nil, fmt.Errorf("agent: workflow tool: %w", err)
	}
	run := func(ctx durable.Context, args json.RawMessage) (tools.Result, error) {
		var in In
		if err := json.Unmarshal(args, &in); err != nil {
			return errorResult(fmt.Sprintf("tool %s: arguments: %v", name, err)), nil
		}
		out, err := fn(ctx, in)
		if err != nil {
			return errorResult(err.Error()), err
		}
		content, err := json.Marshal(out)
		if err != nil {
			return errorResult(fmt.Sprintf("tool %s: encode result: %v", name, err)), nil
		}
		return tools.Result{Content: string(content)}, nil
	}
	return &WorkflowTool{schema: schema, run: run}, nil
}

// MustNewWorkflowTool is NewWorkflowTool that panics on error.
func MustNewWorkflowTool[In, Out any](name, description string, fn func(durable.Context, In) (Out, error)) *WorkflowTool {
	t, err := NewWorkflowTool(name, description, fn)
	if err != nil {
		panic(err)
	}
	return t
}

// Name returns the tool's name.
func (t *WorkflowTool) Name() string { return t.schema.Name() }
