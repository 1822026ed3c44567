//go:build windows

package resolve

// systemServers returns nil: Windows has no resolv.conf, so lookups go
// through the Go resolver (net.DefaultResolver), which reports no TTL.
func systemServers() []string { return nil }
