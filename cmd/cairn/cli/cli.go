// Package cli is cairn's command-line tool as a package. cmd/cairn is this
// tool with no workflows of its own; a program mounts it with its own
// agents and workflows, so that the same commands, and replay-check, run
// against its code:
//
//	func main() {
//		cli.Main(cli.App{Name: "support-ops", Agents: []*agent.Agent{support}})
//	}
//
// The commands read and steer runs in a Redis store (--redis, or the
// CAIRN_REDIS_URL environment variable: one server, a Redis Cluster or
// Sentinel; with --prefix, and TLS with --tls-ca, --tls-cert, --tls-key,
// --tls-server-name, each with its environment variable too): list runs,
// show a run's history, watch a run live, list pending approvals and
// decide them, send signals and chat messages, print a conversation's
// transcript, cancel runs and resume parked ones, export a run's history
// to a file, and replay recorded histories against the code before a
// deploy. cairn ui serves the same as a web console (package
// cmd/cairn/console), with the App's Authorizer and Codec. cairn eval runs
// evaluation datasets against the program's agents (App.Evaluate) and
// gates CI on their report; mcp serve serves them as MCP tools (see
// tools/mcp). Every command has --help; most have --json.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/agent"
	webconsole "github.com/cairn-dev/cairn/cmd/cairn/console"
	"github.com/cairn-dev/cairn/durable"
	"github.com/cairn-dev/cairn/durable/aesgcm"
	"github.com/cairn-dev/cairn/durable/backend"
	"github.com/cairn-dev/cairn/durable/redis"
)

// EnvRedisURL names the environment variable that gives the Redis URL when
// --redis is not set.
const EnvRedisURL = "CAIRN_REDIS_URL"

// Exit statuses.
const (
	ExitOK       = 0 // done; replay-check: every history replays
	ExitFailure  = 1 // the command failed; replay-check: a history diverges
	ExitUsage    = 2 // bad command line
	ExitDiverged = ExitFailure
)

// App is the command-line tool. Its zero value is cmd/cairn: no agents
// or workflows of its own. Fill Agents and Workflows with those of your
// program to replay-check against them; give the Codec your workers use if
// payloads are encoded at rest, and the Authorizer your Runtimes use for
// approvals.
type App struct {
	// Name is the program's name in help texts. Default: "cairn".
	Name string
	// Agents and Workflows are the code replay-check replays histories
	// against, found by workflow name (an agent's workflow is named
	// after it).
	Agents    []*agent.Agent
	Workflows []durable.WorkflowDefinition
	// Codec decodes payloads at rest; it must be the workers' codec.
	// Default: the AES-GCM codec (package durable/aesgcm) with the keys
	// in $CAIRN_CODEC_KEYS ("id:base64key,..." the current key first), if
	// set. A payload the tool cannot decode is shown as
	// "(encrypted: key ID)"; the rest of the run is still shown.
	Codec backend.Codec
	// Authorizer checks approve and reject. Default: anyone who gives a
	// name with --by.
	Authorizer agent.Authorizer
	// Getenv reads the environment. Default: os.Getenv.
	Getenv func(string) string
	// Authenticate tells who makes a request to cairn ui's console
	// (console.Options.Authenticate): your single sign-on, a header set
	// by your proxy. Default: the token cairn ui prints, which signs a
	// browser in as --user.
	Authenticate func(r *http.Request) (webconsole.Identity, error)
	// Evaluate runs cairn eval's cases against one of Agents. Default:
	// RunnerEvaluator(nil), an evals.Runner with no judge model and no
	// named graders; give RunnerEvaluator a configure func to add them.
	Evaluate Evaluator
}

// Main runs the tool with the process's arguments, stops on SIGINT or
// SIGTERM, and exits with its status. It silences go-redis's own logger,
// which is global to the process: the tool reports errors itself.
func Main(app App) {
	goredis.SetLogger(silent{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// silent is a go-redis logger that says nothing.
type silent struct{}

func (silent) Printf(context.Context, string, ...any) {}

// command is one subcommand.
type command struct {
	name    string
	args    string // what follows the name in the usage line
	summary string
	// flags adds the command's own flags; run does the work with the
	// positional arguments.
	flags func(fs *flag.FlagSet, o *opts)
	run   func(ctx context.Context, e *env, args []string) error
	// nargs checks the number of positional arguments.
	nargs func(n int) bool
	// store says the command needs the Redis store.
	store bool
}

// opts are the flags of all commands; each command defines those it takes.
type opts struct {
	conn     connection
	json     bool
	status   string
	workflow string
	limit    int
	by       string
	reason   string
	action   string
	reply    bool
	timeout  time.Duration
	runs     stringList
	live     bool

	// eval's
	trials      int
	concurrency int
	tags        string
	baseline    string
	jsonFile    string
	junitFile   string
	htmlFile    string
	cache       string
}

// stringList is a flag that may be given several times.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// errUsage marks an error in the command line: exit status ExitUsage.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usageError(format string, args ...any) error { return errUsage{fmt.Sprintf(format, args...)} }

// errDiverged is replay-check's error when a history does not replay.
var errDiverged = errors.New("a history does not replay against this code")

// Run runs the command line args (without the program name), writing to
// stdout and stderr, and returns the exit status: ExitOK, ExitFailure
// (the command failed, or replay-check found a divergence), or ExitUsage.
func (app App) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name := app.name()
	cmds := app.commands()
	global, args := leadingFlags(args)
	if len(global) > 0 && len(args) == 0 {
		fmt.Fprintf(stderr, "%s: flags %s but no command; run %s --help for the list\n", name, strings.Join(global, " "), name)
		return ExitUsage
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) > 1 {
			if c := findCommand(cmds, args[1:]); c != nil {
				return app.runCommand(ctx, c, []string{"--help"}, stdout, stderr)
			}
		}
		w := stdout
		code := ExitOK
		if len(args) == 0 {
			w, code = stderr, ExitUsage
		}
		app.usage(w, cmds)
		return code
	}
	c := findCommand(cmds, args)
	if c == nil {
		fmt.Fprintf(stderr, "%s: unknown command %q; run %s --help for the list\n", name, strings.Join(args[:min(len(args), 2)], " "), name)
		return ExitUsage
	}
	rest := args[len(strings.Fields(c.name)):]
	return app.runCommand(ctx, c, append(global, rest...), stdout, stderr)
}

// leadingFlags splits off the flags before the command name ("cairn
// --redis URL show RUN"), which are parsed with the command's own: a
// global flag (--redis, --prefix, --tls-*, --json) may come before the
// command or after it.
// Help flags are left for Run.
func leadingFlags(args []string) (flags, rest []string) {
	for len(args) > 0 {
		a := args[0]
		name := strings.TrimLeft(a, "-")
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" || name == "h" || name == "help" {
			break
		}
		flags, args = append(flags, a), args[1:]
		if !strings.Contains(name, "=") && takesValue(name) && len(args) > 0 {
			flags, args = append(flags, args[0]), args[1:]
		}
	}
	return flags, args
}

func (app App) name() string {
	if app.Name == "" {
		return "cairn"
	}
	return app.Name
}

func (app App) getenv(key string) string {
	if app.Getenv != nil {
		return app.Getenv(key)
	}
	return os.Getenv(key)
}

// findCommand finds the command args begin with: a one-word command, or
// a two-word one ("history export").
func findCommand(cmds []*command, args []string) *command {
	for _, c := range cmds {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return c
		}
	}
	return nil
}

func (app App) usage(w io.Writer, cmds []*command) {
	name := app.name()
	fmt.Fprintf(w, "%s: see and steer durable runs in Redis, and check recorded histories against code.\n\n", name)
	fmt.Fprintf(w, "Usage: %s <command> [arguments] [flags]\n\nCommands:\n", name)
	for _, c := range cmds {
		first, _, _ := strings.Cut(c.summary, "\n")
		fmt.Fprintf(w, "  %-16s %s\n", c.name, first)
	}
	fmt.Fprintf(w, "\nThe store is Redis, reached with these flags, before or after the command (%s --redis URL show RUN),\n"+
		"or their environment variables:\n", name)
	for _, f := range [][3]string{
		{"--redis URL", EnvRedisURL, "redis://, rediss:// (TLS), redis+cluster://host:port,host:port, redis+sentinel://host:port/master"},
		{"--prefix P", EnvRedisPrefix, "the store's key prefix (default " + redis.DefaultPrefix + ")"},
		{"--tls-ca FILE", EnvTLSCA, "the CA certificates that sign the servers' (default: the system's roots)"},
		{"--tls-cert FILE", EnvTLSCert, "a client certificate, for servers that ask for one"},
		{"--tls-key FILE", EnvTLSKey, "the client certificate's key"},
		{"--tls-server-name NAME", EnvTLSServerName, "the name the servers' certificates hold (default: the host dialed)"},
	} {
		fmt.Fprintf(w, "  %-24s $%-22s %s\n", f[0], f[1], f[2])
	}
	fmt.Fprintf(w, "Payloads encrypted at rest are read with the keys in $%s (id:base64key,... the current key first).\n"+
		"Run %s <command> --help for a command's flags.\n", aesgcm.EnvKeys, name)
}

// runCommand parses a command's flags and runs it.
func (app App) runCommand(ctx context.Context, c *command, args []string, stdout, stderr io.Writer) int {
	name := app.name()
	fs := flag.NewFlagSet(name+" "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o opts
	if c.store {
		storeFlags(fs, &o.conn, redisUsage)
	}
	if c.flags != nil {
		c.flags(fs, &o)
	}
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace(name+" "+c.name+" "+c.args), c.summary)
		if hasFlags(fs) {
			fmt.Fprintln(w, "\nFlags:")
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
	positional, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		help(stdout)
		return ExitOK
	}
	if err == nil && c.nargs != nil && !c.nargs(len(positional)) {
		err = fmt.Errorf("wrong number of arguments")
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", name, c.name, err)
		help(stderr)
		return ExitUsage
	}
	if app, err = app.withEnvCodec(); err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", name, c.name, err)
		return ExitUsage
	}
	e := &env{app: app, o: o, out: stdout, errOut: stderr}
	if c.store {
		if err := e.open(ctx); err != nil {
			fmt.Fprintf(stderr, "%s %s: %v\n", name, c.name, err)
			var u errUsage
			if errors.As(err, &u) {
				return ExitUsage
			}
			return ExitFailure
		}
		defer e.close()
	}
	if err := c.run(ctx, e, positional); err != nil {
		var u errUsage
		switch {
		case errors.As(err, &u):
			fmt.Fprintf(stderr, "%s %s: %v\n", name, c.name, err)
			return ExitUsage
		case errors.Is(err, errDiverged):
			return ExitDiverged
		}
		fmt.Fprintf(stderr, "%s %s: %v\n", name, c.name, explain(err))
		return ExitFailure
	}
	return ExitOK
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseInterleaved parses flags wherever they are among the positional
// arguments ("show RUN --json" as well as "show --json RUN"); "--" ends
// the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// explain rewords errors a person can act on.
func explain(err error) string {
	switch {
	case errors.Is(err, backend.ErrRunNotFound):
		return err.Error() + " (no run has that id in this store; list runs with: runs)"
	case errors.Is(err, agent.ErrNotPending):
		return err.Error() + " (list what waits with: approvals, questions)"
	case errors.Is(err, durable.ErrUnregistered):
		return err.Error() + " (run the command from your program, which mounts this tool with its agents in cli.App.Agents)"
	}
	msg := err.Error()
	if hint := connectHint(err, nil); !strings.Contains(msg, hint) { // reaching Redis gives its own
		msg += hint
	}
	return msg
}

// env is what a command works with.
type env struct {
	app    App
	o      opts
	out    io.Writer
	errOut io.Writer

	store  *redis.Store
	client *durable.Client
	rt     *agent.Runtime
	// view reads runs to show them: a payload it cannot decode is shown
	// as such (see shownCodec), not as an error.
	view *agent.Runtime
}

// open connects to the Redis store and checks it answers.
func (e *env) open(ctx context.Context) error {
	url := e.app.redisURL(e.o.conn)
	if url == "" {
		return usageError("no Redis: give --redis URL or set %s", EnvRedisURL)
	}
	tlsConfig, err := e.app.tlsConfig(e.o.conn)
	if err != nil {
		return err
	}
	quiet := slog.New(slog.DiscardHandler)
	options := []redis.Option{redis.WithLogger(quiet), redis.WithPrefix(e.app.flagOrEnv(e.o.conn.prefix, EnvRedisPrefix))}
	if tlsConfig != nil {
		options = append(options, redis.WithTLS(tlsConfig))
	}
	store, err := redis.Open(url, options...)
	if err != nil {
		return usageError("--redis: %v", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := store.Client().Ping(pingCtx).Err(); err != nil {
		store.Close()
		return fmt.Errorf("cannot reach Redis at %s: %w%s", redactURL(url), err, connectHint(err, tlsConfig))
	}
	e.store = store
	e.rt = agent.NewRuntime(store, agent.Options{Codec: e.app.Codec, Authorizer: e.app.Authorizer, Logger: quiet})
	if err := e.rt.Register(e.app.Agents...); err != nil {
		store.Close()
		return err
	}
	e.client = e.rt.Client()
	e.view = agent.NewRuntime(store, agent.Options{Codec: e.shown(), Authorizer: e.app.Authorizer, Logger: quiet})
	return nil
}

func (e *env) close() {
	if e.store != nil {
		e.store.Close()
	}
}

// redactURL hides a password in a Redis URL.
func redactURL(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return url
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":***" + rest[at:]
}
