package spantree

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckOnce(t *testing.T) {
	good := ` +0.000s   0.000s  handle request
 +0.000s   0.021s    invoke_agent support [completed]
 +0.000s   0.000s      chat scripted [step 1, tokens 211 in/15 out]
 +0.001s   0.000s      execute_tool refund [step 6, attempt 2, error attempt_lost]
 +0.001s   0.000s      execute_tool refund [step 6, attempt 3]`
	assert.NoError(t, CheckOnce(good), "a good tree")
	for name, bad := range map[string]string{
		"a step twice":        good + "\n +0.002s   0.000s      chat scripted [step 1, replayed]",
		"an attempt twice":    good + "\n +0.002s   0.000s      execute_tool refund [step 6, attempt 3, replayed]",
		"two run spans":       good + "\n +0.000s   0.021s    invoke_agent support [completed, replayed]",
		"no run span":         strings.Replace(good, "invoke_agent", "other", 1),
		"not a line of Write": good + "\nsomething",
	} {
		assert.Error(t, CheckOnce(bad), name)
	}
}
