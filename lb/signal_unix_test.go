//go:build unix

package main

import (
	"syscall"
	"testing"
)

func TestSIGHUPReloads(t *testing.T) {
	up := echoServer(t)
	r := runAppWith(t, publish("127.0.0.31:0", up), reloadSignal())
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := r.waitReload(t); err != nil {
		t.Fatalf("reload on SIGHUP: %v", err)
	}
}
