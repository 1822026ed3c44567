package main

import (
	"fmt"
	"io"
	"os"

	"github.com/swarmdns/swarmdns/internal/api"
)

func init() {
	commands["node"] = command{
		usage: "node ls [--api ADDR] [--format table|json]: list the cluster's nodes",
		run:   runNode,
	}
	commands["service"] = command{
		usage: "service ls|ps NAME [--api ADDR] [--format table|json]: list services, tasks",
		run:   runService,
	}
	commands["network"] = command{
		usage: "network ls [--api ADDR] [--format table|json]: list networks",
		run:   runNetwork,
	}
}

// viewArgs parses the flags every view takes and returns the client, the
// format and the other arguments.
func viewArgs(name string, args []string) (*api.Client, string, []string, bool) {
	fs := newFlags(name)
	addr := fs.String("api", api.DefaultAddr, "the dnsd to ask: host:port or unix:PATH")
	format := fs.String("format", api.FormatTable, "table or json")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return nil, "", nil, false
	}
	if *format != api.FormatTable && *format != api.FormatJSON {
		fmt.Fprintf(os.Stderr, "dnsd %s: --format %q: want table or json\n", name, *format)
		return nil, "", nil, false
	}
	return api.NewClient(*addr), *format, rest, true
}

func runNode(args []string) int {
	c, format, rest, ok := viewArgs("node", args)
	if !ok || len(rest) != 1 || rest[0] != "ls" {
		fmt.Fprintln(os.Stderr, "usage: dnsd "+commands["node"].usage)
		return exitUsage
	}
	return show(c, "/v1/nodes", func(w io.Writer, v []api.NodeView) error {
		return api.RenderNodes(w, v, format)
	})
}

func runService(args []string) int {
	c, format, rest, ok := viewArgs("service", args)
	switch {
	case ok && len(rest) == 1 && rest[0] == "ls":
		return show(c, "/v1/services", func(w io.Writer, v []api.ServiceView) error {
			return api.RenderServices(w, v, format)
		})
	case ok && len(rest) == 2 && rest[0] == "ps":
		tasks, err := c.Tasks(rest[1])
		if err != nil {
			return fail(err)
		}
		if err := api.RenderTasks(os.Stdout, tasks, format); err != nil {
			return fail(err)
		}
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "usage: dnsd "+commands["service"].usage)
	return exitUsage
}

func runNetwork(args []string) int {
	c, format, rest, ok := viewArgs("network", args)
	if !ok || len(rest) != 1 || rest[0] != "ls" {
		fmt.Fprintln(os.Stderr, "usage: dnsd "+commands["network"].usage)
		return exitUsage
	}
	return show(c, "/v1/networks", func(w io.Writer, v []api.NetworkView) error {
		return api.RenderNetworks(w, v, format)
	})
}

// show fetches path and renders it to standard output.
func show[T any](c *api.Client, path string, render func(io.Writer, []T) error) int {
	var v []T
	if err := c.Get(path, &v); err != nil {
		return fail(err)
	}
	if err := render(os.Stdout, v); err != nil {
		return fail(err)
	}
	return exitOK
}
