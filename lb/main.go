package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	conf := flag.String("conf", "lb.conf", "config file")
	level := flag.String("log-level", "info", "debug, info, warn or error")
	profile := flag.String("cpuprofile", "", "write a CPU profile to this file until exit")
	flag.Parse()

	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "lb: -log-level %q: %v\n", *level, err)
		os.Exit(2)
	}
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})
	log := slog.New(h).With("component", "lb")

	if *profile != "" {
		stopProfile, err := startProfile(*profile)
		if err != nil {
			log.Error("cpu profile", "err", err)
			os.Exit(1)
		}
		defer stopProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *conf, log, reloadSignal()); err != nil {
		log.Error("lb stopped", "err", err)
		stop()
		os.Exit(1)
	}
}

// startProfile writes a CPU profile to path until the returned function
// is called.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
