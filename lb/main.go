package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	conf := flag.String("conf", "lb.conf", "config file")
	level := flag.String("log-level", "info", "debug, info, warn or error")
	flag.Parse()

	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "lb: -log-level %q: %v\n", *level, err)
		os.Exit(2)
	}
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})
	log := slog.New(h).With("component", "lb")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *conf, log, reloadSignal()); err != nil {
		log.Error("lb stopped", "err", err)
		os.Exit(1)
	}
}
