package redis_test

import (
	"fmt"
	"strings"

	"github.com/cairn-dev/cairn/durable/redis"
)

// An operator creates the user a store logs in as, with the rules of
// ACLRules: the keys of the store's prefix, and the commands it needs.
func ExampleACLRules() {
	rules := redis.ACLRules("acme")
	fmt.Println("ACL SETUSER acme-worker on >PASSWORD", strings.Join(rules[:4], " "), "...")
	fmt.Println("commands, among them:", strings.Join(redis.ACLCommands()[:3], ", "))
	// Output:
	// ACL SETUSER acme-worker on >PASSWORD resetkeys ~acme:* resetchannels -@all ...
	// commands, among them: cluster|slots, command, del
}
