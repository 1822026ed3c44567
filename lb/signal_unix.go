//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// reloadSignal returns a channel that receives SIGHUP.
func reloadSignal() <-chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch
}
