package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmdns/swarmdns/internal/l4"
)

// app is one running lb: the proxy server, its metrics endpoint and the
// config it follows.
type app struct {
	path string
	log  *slog.Logger
	m    *l4.Metrics
	srv  *l4.Server

	cfg         *l4.Config
	metrics     *http.Server
	metricsAddr net.Addr
	draining    atomic.Bool
	// changes signals edits of the config file; nil when it is not
	// watched. stopWatch ends the watch.
	changes   <-chan struct{}
	stopWatch func()
	// reloaded gets the result of each reload; tests read it.
	reloaded chan error
}

// run serves the config at path until ctx ends, reloading on hup and on
// changes to the file, then drains.
func run(ctx context.Context, path string, log *slog.Logger, hup <-chan os.Signal) error {
	a, err := start(path, log)
	if err != nil {
		return err
	}
	return a.loop(ctx, hup)
}

// start reads the config and brings up the listeners and the metrics
// endpoint.
func start(path string, log *slog.Logger) (*app, error) {
	cfg, err := l4.ReadConfig(path)
	if err != nil {
		return nil, err
	}
	m := l4.NewMetrics()
	a := &app{
		path:     path,
		log:      log,
		m:        m,
		srv:      l4.NewServer(log, m),
		reloaded: make(chan error, 16),
	}
	if err := a.srv.Apply(cfg); err != nil {
		a.srv.Shutdown(context.Background())
		return nil, err
	}
	a.cfg = cfg
	if err := a.serveMetrics(cfg.Metrics); err != nil {
		a.srv.Shutdown(context.Background())
		return nil, err
	}
	// watched before start returns, so that no edit after it is missed
	a.changes, a.stopWatch, err = watchFile(path, log)
	if err != nil {
		log.Warn("config file not watched, reload with SIGHUP", "err", err)
	}
	m.Reload("ok")
	log.Info("lb started", "listeners", len(cfg.Publish), "config", path)
	return a, nil
}

// loop reloads on hup and file changes until ctx ends, then shuts down.
// It must run once for every app that start returned: it ends the watch.
func (a *app) loop(ctx context.Context, hup <-chan os.Signal) error {
	defer a.stopWatch()
	for {
		select {
		case <-ctx.Done():
			a.shutdown()
			return nil
		case <-hup:
			a.log.Info("reload requested", "reason", "SIGHUP")
			a.reload()
		case <-a.changes:
			a.log.Info("reload requested", "reason", "config file changed")
			a.reload()
		}
	}
}

// reload reads the config again and applies it. A config that fails to
// parse or to apply is refused and the running one stays.
func (a *app) reload() {
	err := a.tryReload()
	if err != nil {
		a.m.Reload("error")
		a.log.Error("reload refused, keeping running config", "err", err)
	} else {
		a.m.Reload("ok")
		a.log.Info("reloaded", "listeners", len(a.cfg.Publish))
	}
	select {
	case a.reloaded <- err:
	default:
	}
}

func (a *app) tryReload() error {
	cfg, err := l4.ReadConfig(a.path)
	if err != nil {
		return err
	}
	if err := a.srv.Apply(cfg); err != nil {
		return fmt.Errorf("applying %s: %w", a.path, err)
	}
	if cfg.Metrics != a.cfg.Metrics {
		a.stopMetrics()
		if err := a.serveMetrics(cfg.Metrics); err != nil {
			a.cfg = cfg
			return err
		}
	}
	a.cfg = cfg
	return nil
}

// shutdown stops taking clients, then drains for the drain timeout.
func (a *app) shutdown() {
	a.draining.Store(true)
	a.log.Info("draining", "duration_s", a.cfg.DrainTimeout.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.DrainTimeout)
	defer cancel()
	a.srv.Shutdown(ctx)
	a.stopMetrics()
	a.log.Info("stopped")
}

// serveMetrics serves /metrics and /health on addr; empty addr serves
// nothing.
func (a *app) serveMetrics(addr string) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/health", a.health)
	a.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func(s *http.Server) {
		if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server stopped", "err", err)
		}
	}(a.metrics)
	a.metricsAddr = ln.Addr()
	a.log.Info("metrics listening", "addr", ln.Addr())
	return nil
}

func (a *app) stopMetrics() {
	if a.metrics == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = a.metrics.Shutdown(ctx)
	a.metrics = nil
}

// health answers 200 while lb takes clients and 503 while it drains, so
// a balancer in front stops sending new clients.
func (a *app) health(w http.ResponseWriter, _ *http.Request) {
	if a.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
