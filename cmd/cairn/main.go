// Command cairn lists, shows, watches and steers durable runs in Redis,
// decides the approvals they wait for, and checks recorded histories.
//
//	cairn --help
//	export CAIRN_REDIS_URL=redis://localhost:6379/0
//	cairn runs --status awaiting_approval
//	cairn show refund-1
//	cairn approve refund-1 call_1_0 --by alice@example.com --reason "receipt checked"
//
// It knows no workflows of its own: to replay-check histories against
// your code, mount the same commands in your program with package
// github.com/cairn-dev/cairn/cmd/cairn/cli.
package main

import "github.com/cairn-dev/cairn/cmd/cairn/cli"

func main() { cli.Main(cli.App{}) }
