//go:build !unix

package main

import (
	"errors"
	"time"
)

// cpuTime is not available outside Unix.
func cpuTime() (time.Duration, error) {
	return 0, errors.New("process CPU time: not available on this system")
}
