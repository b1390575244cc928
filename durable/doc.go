// Package durable runs ordinary Go functions as durable workflows: a run
// survives the crash or redeploy of the process that executes it, and goes
// on from where it stopped without repeating what it already did.
//
// # The model
//
// A run is one execution of a Workflow with an input and an id chosen by
// the caller. Everything a run does that touches the world goes through
// the functions of this package, and each of those steps is recorded in
// the run's history, an append-only list of events kept by a store
// (durable/redis, or durable/inmem for tests and demos):
//
//   - activities (NewActivity, Execute, StartActivity): plain
//     func(context.Context, In) (Out, error) that do the I/O (model calls,
//     tool calls, payments). Their results are journaled; a completed
//     activity is never executed again. An attempt cut off by a crash runs
//     again with the same idempotency key (ActivityInfo.IdempotencyKey),
//     which the activity can hand to the outside system. Retries follow a
//     RetryPolicy; NonRetryable and RetryAfter shape them.
//   - time and randomness (Now, Sleep, NewTimer, Rand, NewID, SideEffect).
//   - messages from outside (Signal: Send, Receive, ReceiveTimeout).
//   - child runs (ExecuteChild, StartChild) and code changes (Version).
//
// To go on after a crash, a worker replays the history: it calls the
// workflow function again, and each step the code issues is answered from
// the history instead of being done again, until the code reaches the first
// step that had not finished. So workflow code must be deterministic: given
// the same history it must issue the same steps in the same order. It must
// not read the clock, draw random numbers, start goroutines, use channels
// or do I/O of its own; it uses Context and this package instead. Code that
// does otherwise is caught on replay: the run is parked (not failed) with a
// NondeterminismError that shows the first divergence, and is tried again
// when fixed code is deployed (Client.Resume). ReplayHistory runs that
// check before a deploy.
//
// Waiting is free: a run that waits for a timer, a signal or a child holds
// no goroutine and no memory in any worker. It is only data in the store,
// and any worker picks it up when there is something to do.
//
// # A minimal program
//
// The package's examples run this (Example_hello):
//
//	greet := durable.NewActivity("greet", func(ctx context.Context, name string) (string, error) {
//		return "hello, " + name, nil // the I/O goes here: it runs once, its result is journaled
//	})
//	hello := durable.NewWorkflow("hello", func(ctx durable.Context, name string) (string, error) {
//		return durable.Execute(ctx, greet, name)
//	})
//
//	store := inmem.New() // redis.Open(url) in production
//	worker := durable.NewWorker(store, durable.WorkerOptions{})
//	worker.Register(hello)
//	go worker.Run(ctx)
//
//	client := durable.NewClient(store, durable.ClientOptions{})
//	run, err := hello.Start(ctx, client, "hello-ann", "ann") // the caller names the run
//	if err != nil {
//		return err
//	}
//	greeting, err := run.Result(ctx)
//
// # Roles
//
//   - Workflow authors write Workflows and Activities with the functions
//     above.
//   - Workers (NewWorker) execute runs: any number of processes may share
//     a store; each run is executed by one worker at a time under a lease,
//     and the runs of a worker that dies are taken over when their leases
//     expire.
//   - Clients (NewClient) start runs, wait for their results, send them
//     signals, cancel, describe and list them, and read their histories.
//
// # Tracing
//
// A worker given WorkerOptions.Tracing emits an OpenTelemetry span for
// each run, activity attempt, timer, signal waited for and child run, from
// what it commits, with ids derived from the run and the step, and makes
// sure a span its worker died before exporting is sent by the next worker
// of the run (Tracing says exactly when). The agent package names these
// spans after the GenAI conventions; plain workflows get them as they are.
//
// What a store implements, and the records it keeps (RunInfo, Event,
// Status, Failure), are in package durable/backend. Package
// durable/durabletest runs workflows in tests with a clock that skips
// ahead.
package durable
