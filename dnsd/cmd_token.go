package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/swarmdns/swarmdns/internal/api"
	"github.com/swarmdns/swarmdns/internal/cluster"
)

func init() {
	commands["init"] = command{
		usage: "init [--data-dir D] [--label L] [--force]: create a cluster, print its join token",
		run:   runInit,
	}
	commands["join-token"] = command{
		usage: "join-token [-q] [--rotate] [--data-dir D] [--api ADDR]: print or rotate the token",
		run:   runJoinToken,
	}
}

// exit codes of the verbs
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("dnsd "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// parseArgs parses flags wherever they stand among the arguments, so that
// `dnsd service ps web --format json` works, and returns the others.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// fail prints err as dnsd's complaint and returns the failure exit code.
func fail(err error) int {
	fmt.Fprintf(os.Stderr, "dnsd: %v\n", err)
	return exitFail
}

func runInit(args []string) int {
	fs := newFlags("init")
	dir := fs.String("data-dir", cluster.DefaultDataDir(), "where to keep the cluster's files")
	label := fs.String("label", "", "the cluster's label (default: random)")
	force := fs.Bool("force", false, "replace an existing cluster's token")
	if rest, err := parseArgs(fs, args); err != nil || len(rest) > 0 {
		return exitUsage
	}
	if err := initCluster(os.Stdout, *dir, *label, *force); err != nil {
		return fail(err)
	}
	return exitOK
}

func initCluster(w io.Writer, dir, label string, force bool) error {
	path := filepath.Join(dir, cluster.TokenFileName)
	if _, err := os.Stat(path); err == nil && !force {
		return fmt.Errorf("%s exists: this node already has a cluster (--force replaces it)", path)
	}
	if label == "" {
		var err error
		if label, err = cluster.NewLabel(); err != nil {
			return err
		}
	}
	tok, err := cluster.NewToken(label)
	if err != nil {
		return err
	}
	if err := cluster.WriteTokenFile(path, []cluster.Token{tok}); err != nil {
		return err
	}
	fmt.Fprintf(w, "Cluster %s created; its token is in %s.\n\n", label, path)
	printToken(w, tok, path)
	return nil
}

func printToken(w io.Writer, tok cluster.Token, path string) {
	fmt.Fprintf(w, "To add a node, give it this token in its token file (%s\n"+
		"on this node) and list this node's gossip address under join:\n\n"+
		"    %s\n\n"+
		"    swarm {\n        cluster {\n            token_file /etc/dnsd/token\n"+
		"            join THIS-NODE:7946\n        }\n    }\n", path, tok)
}

func runJoinToken(args []string) int {
	fs := newFlags("join-token")
	quiet := fs.Bool("q", false, "print the token only")
	rotate := fs.Bool("rotate", false, "replace the cluster's key on every node")
	dir := fs.String("data-dir", cluster.DefaultDataDir(), "where the cluster's files are")
	addr := fs.String("api", api.DefaultAddr, "the local dnsd's API, for --rotate")
	if rest, err := parseArgs(fs, args); err != nil || len(rest) > 0 {
		return exitUsage
	}
	path := filepath.Join(*dir, cluster.TokenFileName)
	toks, err := cluster.ReadTokenFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fail(fmt.Errorf("no cluster here: %s is missing (dnsd init creates it)", path))
	}
	if err != nil {
		return fail(err)
	}
	tok := toks[0]
	if *rotate {
		next, d, err := rotateToken(api.NewClient(*addr), tok)
		if err != nil {
			return fail(err)
		}
		tok = next
		if !*quiet {
			fmt.Printf("Rotating: every node switches to the new key; the old token stops "+
				"working in about %v.\n\n", d.Round(time.Second))
		}
	}
	if *quiet {
		fmt.Println(tok)
		return exitOK
	}
	printToken(os.Stdout, tok, path)
	return exitOK
}

// rotateToken asks the local dnsd to rotate the cluster from cur to a new
// token, and returns it with how long the rotation takes.
func rotateToken(c *api.Client, cur cluster.Token) (cluster.Token, time.Duration, error) {
	next, err := cluster.NewToken(cur.Label)
	if err != nil {
		return cluster.Token{}, 0, err
	}
	var resp api.RotateResponse
	req := api.RotateRequest{Current: cur.String(), Next: next.String()}
	if err := c.Post("/v1/join-token/rotate", req, &resp); err != nil {
		return cluster.Token{}, 0, fmt.Errorf("rotation needs the local dnsd running: %w", err)
	}
	return next, time.Duration(resp.DurationSeconds * float64(time.Second)), nil
}
