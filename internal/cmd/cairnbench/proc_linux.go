package main

import "syscall"

// dieWithParent makes a child process get SIGKILL when cairnbench dies,
// so that a cairnbench killed with SIGKILL leaves no redis-server behind.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
