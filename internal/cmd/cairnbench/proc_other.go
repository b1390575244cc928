//go:build !linux

package main

import "syscall"

// dieWithParent returns nil: outside Linux, a cairnbench killed with
// SIGKILL leaves its redis-server running (its workers end with their
// standard input).
func dieWithParent() *syscall.SysProcAttr { return nil }
