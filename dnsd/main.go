// Command dnsd is a CoreDNS build for container service discovery: the
// stock plugins a production node needs plus the swarm plugin, which
// answers service names with the addresses of their tasks.
//
// Run it as CoreDNS is run: dnsd -conf Corefile. Its other verbs (dnsd
// init, dnsd node ls, ...) manage and show the cluster; dnsd help lists
// them.
package main

import (
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// the stock plugins, in the order of directives below
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/any"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/bufsize"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/cancel"
	_ "github.com/coredns/coredns/plugin/chaos"
	_ "github.com/coredns/coredns/plugin/debug"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metadata"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/minimal"
	_ "github.com/coredns/coredns/plugin/nsid"
	_ "github.com/coredns/coredns/plugin/pprof"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/whoami"

	_ "github.com/swarmdns/swarmdns/plugins/swarm"
)

// directives is the plugin order of this build: CoreDNS's own order, cut
// to the plugins imported above, with swarm where CoreDNS keeps its
// service-discovery backends (after hosts, before file and forward). A
// query passes through the plugins of its server block in this order,
// whatever order the Corefile names them in.
var directives = []string{
	"root",
	"metadata",
	"cancel",
	"reload",
	"nsid",
	"bufsize",
	"bind",
	"debug",
	"ready",
	"health",
	"pprof",
	"prometheus",
	"errors",
	"log",
	"any",
	"chaos",
	"loadbalance",
	"rewrite",
	"acl",
	"cache",
	"minimal",
	"template",
	"hosts",
	"swarm",
	"loop",
	"forward",
	"whoami",
}

func main() {
	if len(os.Args) > 1 {
		if cmd, ok := commands[os.Args[1]]; ok {
			os.Exit(cmd.run(os.Args[2:]))
		}
	}
	dnsserver.Directives = directives
	coremain.Run()
}

// command is one of dnsd's verbs besides serving.
type command struct {
	usage string
	run   func(args []string) int
}

// commands maps a verb (the first argument) to its command. Files of this
// package add their verbs in init functions.
var commands = map[string]command{}

func init() {
	commands["help"] = command{usage: "help: list the verbs", run: help}
}

func help([]string) int {
	fmt.Println("usage: dnsd [-conf Corefile] [CoreDNS flags]   serve DNS")
	for _, name := range slices.Sorted(maps.Keys(commands)) {
		fmt.Printf("       dnsd %s\n", commands[name].usage)
	}
	return 0
}
