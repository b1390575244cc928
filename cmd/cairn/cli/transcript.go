package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cairn-dev/cairn/providers"
)

// transcriptCommand is transcript RUN: it prints the conversation of an
// agent run from its first message (agent.Runtime.Transcript): the
// messages its earlier histories archived as the conversation continued
// as new, then those of its current history.
//
// It prints a line about the run (id, workflow, status, number of
// messages, and how often it continued as new), then each message as a block
// of its own, blocks apart by an empty line:
//
//	#3 assistant
//	  Let me look that order up.
//	  call call_0_0: lookup_order {"order_id":"A-1001"}
//
//	#4 tool · result of call_0_0
//	  order A-1001: 2 pizzas, 120 euros, delivered cold
//
// The header names the message's number and role, and for a tool result
// the call it answers; the text follows, indented, then the tool calls an
// assistant message makes, one a line, with their ids and arguments.
//
// --json prints each message as a JSON object (providers.Message) on a
// line of its own, and nothing else.
//
// A run in progress is read by replaying its history against the
// program's agents (cli.App.Agents): with cmd/cairn, which has none, the
// transcript of a run that has not completed is an error that says so.
func transcriptCommand() *command {
	return &command{
		name:    "transcript",
		args:    "RUN",
		summary: "Print an agent run's conversation from its first message, archived histories included.",
		store:   true,
		nargs:   exactly(1),
		flags: func(fs *flag.FlagSet, o *opts) {
			fs.BoolVar(&o.json, "json", false, "print each message as JSON, one a line")
		},
		run: cmdTranscript,
	}
}

func cmdTranscript(ctx context.Context, e *env, args []string) error {
	messages, err := e.rt.Transcript(ctx, args[0])
	if err != nil {
		return err
	}
	if e.o.json {
		return writeJSONLines(e.out, messages)
	}
	info, err := e.client.Describe(ctx, args[0])
	if err != nil {
		return err
	}
	head := []string{"Run " + info.ID, "workflow " + info.Workflow, string(info.Status), fmt.Sprintf("%d %s", len(messages), plural(len(messages), "message", "messages"))}
	if info.Generation > 0 {
		head = append(head, "continued as new "+plural(info.Generation, "once", fmt.Sprintf("%d times", info.Generation)))
	}
	fmt.Fprintln(e.out, strings.Join(head, " · "))
	for i, m := range messages {
		fmt.Fprintln(e.out)
		writeMessage(e.out, i+1, m)
	}
	return nil
}

// writeMessage prints message n as a block; see transcriptCommand.
func writeMessage(w io.Writer, n int, m providers.Message) {
	header := fmt.Sprintf("#%d %s", n, m.Role)
	if m.ToolCallID != "" {
		header += " · result of " + m.ToolCallID
	}
	fmt.Fprintln(w, header)
	if m.Content != "" {
		fmt.Fprintln(w, indent(m.Content, "  "))
	}
	for _, c := range m.ToolCalls {
		fmt.Fprintf(w, "  call %s: %s %s\n", c.ID, c.Name, c.Arguments)
	}
	if m.Content == "" && len(m.ToolCalls) == 0 {
		fmt.Fprintln(w, "  (empty)")
	}
}
