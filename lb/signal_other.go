//go:build !unix

package main

import "os"

// reloadSignal returns nil: there is no SIGHUP here, so only an edit of
// the config file reloads it.
func reloadSignal() <-chan os.Signal { return nil }
