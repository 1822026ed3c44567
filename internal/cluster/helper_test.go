package cluster

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/swarmdns/swarmdns/internal/catalog"
)

// helperEnv, when set, makes the test binary run one cluster node instead
// of the tests: the tests that kill a node with SIGKILL need it in a
// process of its own.
const helperEnv = "DNSD_CLUSTER_HELPER"

// runHelper runs the node the environment describes until SIGTERM, then
// leaves the cluster gracefully. It prints "ready ADDR" once started.
func runHelper() int {
	name := os.Getenv("HELPER_NAME")
	tok, err := ParseToken(os.Getenv("HELPER_TOKEN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cat := catalog.New(name)
	n := &testNode{name: name, cat: cat}
	putTasks(n, "svc-"+name, 1)

	logger := slog.New(slog.NewTextHandler(os.Stderr,
		&slog.HandlerOptions{Level: slog.LevelWarn})).With("node", name)
	cl, err := Start(Config{
		Name:              name,
		BindAddr:          os.Getenv("HELPER_BIND"),
		Join:              strings.Fields(os.Getenv("HELPER_JOIN")),
		Tokens:            []Token{tok},
		Logger:            logger,
		ReconnectInterval: 300 * time.Millisecond,
		Tune:              fastTune,
	}, cat)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	fmt.Printf("ready %s\n", cl.Addr())
	<-sig
	if err := cl.Leave(2 * time.Second); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
