//go:build !windows

package resolve

import (
	"net"

	"github.com/miekg/dns"
)

// resolvConf is the system resolver configuration read for servers.
const resolvConf = "/etc/resolv.conf"

// systemServers returns the name servers of resolv.conf as host:port, or
// nil when the file cannot be read.
func systemServers() []string {
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out
}
