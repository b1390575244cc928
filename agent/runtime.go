package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/memory"
	"github.com/cairn-dev/cairn/providers"
	"github.com/cairn-dev/cairn/tools"
)

// Options configure a Runtime.
type Options struct {
	// Codec transforms payloads at rest; every process must use the same.
	Codec backend.Codec
	// Clock tells time. Default: backend.SystemClock.
	Clock backend.Clock
	// Logger receives the runtime's logs. Default: slog.Default.
	Logger *slog.Logger
	// Authorizer checks approvals and answers before they are sent to a
	// run. Default: anyone who gives a name (Decision.By).
	Authorizer Authorizer

	// TracerProvider receives the spans of the runs this runtime's
	// workers execute: invoke_agent, chat, execute_tool, await_approval,
	// timer (see the package documentation). Build it with
	// sdktrace.WithIDGenerator(durable.IDGenerator{}) so that the spans of
	// a run nest under it. Default: otel.GetTracerProvider(), read once.
	TracerProvider trace.TracerProvider
	// MeterProvider receives the runtime's metrics: gen_ai.client.token.usage,
	// gen_ai.client.operation.duration, cairn.steps, cairn.retries,
	// cairn.runs, cairn.approval.wait. Default: otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// RecordContent puts what is said in spans: the messages a model is
	// given and answers (gen_ai.input.messages, gen_ai.output.messages,
	// gen_ai.system_instructions), tool arguments and results. Off by
	// default: content may be private. Inputs are not journaled, so only
	// the worker that made a call can report them.
	RecordContent bool
}

// Runtime binds agents to a durable store: it registers their workflows
// with workers, starts runs, and talks to them (results, approvals,
// answers, messages, live events). Register the same agents in every
// process that runs them; a process that only starts runs, approves calls
// or reads events needs no agents registered for that. A Runtime is safe
// for concurrent use.
type Runtime struct {
	store  backend.Store
	codec  backend.Codec
	client *durable.Client
	feed   backend.Feed // nil if the store has none
	pub    publisher    // writes live events to feed
	clock  backend.Clock
	log    *slog.Logger
	auth   Authorizer
	tel    *telemetry
	// archive keeps the messages conversations drop (see transcript.go);
	// nil if the store has none, which noArchive logs once.
	archive   backend.Archive
	noArchive atomic.Bool

	mu     sync.RWMutex
	agents map[string]*registration
}

// registration is an agent with the durable definitions of its runs.
type registration struct {
	agent    *Agent
	workflow *durable.Workflow[Input, RunResult]
	model    *durable.Activity[modelCall, providers.Response]
	// sample answers the completions tools ask for (serveInput).
	sample *durable.Activity[modelCall, providers.Response]
	// summary writes the summaries of compactions (Agent.Memory); nil
	// without them.
	summary *durable.Activity[modelCall, providers.Response]
	// Long-term memory (Agent.LongTerm): the tools, if offered (their
	// activities are among tools), the recall of each exchange, and the
	// agent that extracts memories; nil without them.
	memoryTools *tools.Set
	recall      *durable.Activity[recallCall, []recalled]
	extractor   *Agent
	tools       map[string]*durable.Activity[toolCall, toolOutcome]
	// toolsets lists the agent's toolsets (Agent.Toolsets); nil without
	// them.
	toolsets *durable.Activity[struct{}, toolList]
	// archive keeps the messages a conversation drops when it continues
	// as new.
	archive *durable.Activity[archiveCall, archived]
}

// NewRuntime returns a runtime on store.
func NewRuntime(store backend.Store, opts Options) *Runtime {
	rt := &Runtime{store: store, codec: opts.Codec, clock: opts.Clock, log: opts.Logger, auth: opts.Authorizer,
		agents: map[string]*registration{}}
	if rt.clock == nil {
		rt.clock = backend.SystemClock()
	}
	if rt.log == nil {
		rt.log = slog.Default()
	}
	if rt.auth == nil {
		rt.auth = RequireName{}
	}
	rt.tel = newTelemetry(opts, rt.log, rt.lookup)
	rt.feed, _ = store.(backend.Feed)
	rt.archive, _ = store.(backend.Archive)
	rt.pub.rt = rt
	rt.client = durable.NewClient(store, durable.ClientOptions{Codec: opts.Codec, Clock: rt.clock})
	return rt
}

// Client returns the durable client the runtime uses, for what it does
// not wrap (listing runs, signals of your own).
func (rt *Runtime) Client() *durable.Client { return rt.client }

// Register registers agents, and the agents they hand off to or use as
// helpers. Registering an agent twice is harmless; two different agents of
// the same name are an error.
func (rt *Runtime) Register(agents ...*Agent) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var add func(a *Agent) error
	add = func(a *Agent) error {
		if err := a.validate(); err != nil {
			return err
		}
		if r, ok := rt.agents[a.Name]; ok {
			if r.agent != a {
				return fmt.Errorf("agent %s: another agent of that name is registered", a.Name)
			}
			return nil
		}
		reg := rt.define(a)
		rt.agents[a.Name] = reg
		others := append(append([]*Agent(nil), a.Handoffs...), a.Helpers...)
		if reg.extractor != nil {
			others = append(others, reg.extractor)
		}
		for _, b := range others {
			if err := add(b); err != nil {
				return err
			}
		}
		return nil
	}
	for _, a := range agents {
		if err := add(a); err != nil {
			return err
		}
	}
	return nil
}

// NewWorker returns a durable worker that runs the registered agents, with
// the runtime's codec and clock, publishing their progress to each run's
// live feed and their spans and metrics to the runtime's providers. opts
// are passed on; their Observers are kept, and so is their Tracing, whose
// TracerProvider replaces the runtime's and whose Describe is called after
// the agents' own.
func (rt *Runtime) NewWorker(opts durable.WorkerOptions) *durable.Worker {
	opts.Observers = append(opts.Observers, rt.observe, rt.tel.observe)
	tracing := durable.Tracing{TracerProvider: rt.tel.tp, Describe: rt.tel.describe}
	if t := opts.Tracing; t != nil {
		tracing.ExportInterval = t.ExportInterval
		if t.TracerProvider != nil {
			tracing.TracerProvider = t.TracerProvider
		}
		if theirs := t.Describe; theirs != nil {
			tracing.Describe = func(s *durable.Span) {
				rt.tel.describe(s)
				theirs(s)
			}
		}
	}
	opts.Tracing = &tracing
	if opts.Codec == nil {
		opts.Codec = rt.codec
	}
	if opts.Clock == nil {
		opts.Clock = rt.clock
	}
	if opts.Logger == nil {
		opts.Logger = rt.log
	}
	w := durable.NewWorker(rt.store, opts)
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	for _, r := range rt.agents {
		w.Register(r.workflow)
	}
	return w
}

func (rt *Runtime) lookup(name string) (*registration, bool) {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	r, ok := rt.agents[name]
	return r, ok
}

// Start starts a run of agent a with the caller's run id. Starting an id
// that exists with the same agent and input returns the existing run; with
// another it is an error wrapping durable.ErrRunExists. The agent need not
// be registered in this process, only in the workers'.
func (rt *Runtime) Start(ctx context.Context, a *Agent, runID string, in Input) (*durable.Run[RunResult], error) {
	if a == nil || !namePattern.MatchString(a.Name) {
		return nil, errors.New("agent: start: a named agent is required")
	}
	if in.Message == "" && len(in.History) == 0 && !in.Conversation {
		return nil, fmt.Errorf("agent %s: start: the input has no message", a.Name)
	}
	if lt := a.LongTerm; lt != nil && in.User != "" {
		if err := memory.ValidNamespace(lt.namespace(in.User)); err != nil {
			return nil, fmt.Errorf("agent %s: start: user %q: %w", a.Name, in.User, err)
		}
	}
	return rt.workflow(a.Name).Start(ctx, rt.client, runID, in)
}

// Run returns a handle on an existing agent run: its result, record,
// history, and cancellation. A run that failed or was canceled gives a
// *durable.RunError from Result. Bound the wait for a result with ctx: a
// run may wait for approvals for days.
func (rt *Runtime) Run(runID string) *durable.Run[RunResult] {
	// The handle does not depend on the agent's name: any workflow of
	// Input and RunResult reads the run's record and result.
	return rt.workflow("agent").Get(rt.client, runID)
}

// now is the runtime's time, for records made outside workflows.
func (rt *Runtime) now() time.Time { return rt.clock.Now() }

// Workflow returns the durable workflow of a's runs, for durable tools
// that take one: durable.ReplayHistory, durabletest.CheckReplay.
func (rt *Runtime) Workflow(a *Agent) durable.WorkflowDefinition { return rt.workflow(a.Name) }

// workflow is the durable workflow of the runs of the agent named name.
// One function serves every agent: it finds its agent by the workflow's
// name.
func (rt *Runtime) workflow(name string) *durable.Workflow[Input, RunResult] {
	return durable.NewWorkflow(name, rt.loop)
}
