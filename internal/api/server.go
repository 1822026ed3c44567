package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/swarmdns/swarmdns/internal/catalog"
	"github.com/swarmdns/swarmdns/internal/cluster"
)

// DefaultAddr is where the API listens, and where the views ask, by
// default.
const DefaultAddr = "127.0.0.1:7947"

// ErrNotLoopback is returned by Listen for an address off the host when
// the caller did not ask for one explicitly.
var ErrNotLoopback = errors.New("api address is not loopback; set api_insecure_listen to allow it")

// Source is what the API serves. Catalog is required. Members and Rotate
// come from the cluster; without one, the node is shown alone at Addr and
// rotation is refused.
type Source struct {
	Catalog *catalog.Catalog
	// Members lists the cluster's nodes; nil for a node without a cluster.
	Members func() []cluster.Member
	// Rotate starts a key rotation; nil for a node without a cluster.
	Rotate func(current, next cluster.Token) (time.Duration, error)
	// Addr is the node's address shown when Members is nil.
	Addr string
}

func (s Source) members() []cluster.Member {
	if s.Members != nil {
		return s.Members()
	}
	return []cluster.Member{{Name: s.Catalog.Self(), Addr: s.Addr, Alive: true, Self: true}}
}

// RotateRequest is the body of POST /v1/join-token/rotate.
type RotateRequest struct {
	Current string `json:"current"`
	Next    string `json:"next"`
}

// RotateResponse answers a rotation: how long until the old token stops
// working.
type RotateResponse struct {
	DurationSeconds float64 `json:"duration_s"`
}

// Handler returns the API's routes:
//
//	GET  /v1/catalog                 the merged catalog snapshot
//	GET  /v1/nodes                   []NodeView
//	GET  /v1/services                []ServiceView
//	GET  /v1/services/{name}/tasks   []TaskView
//	GET  /v1/networks                []NetworkView
//	POST /v1/join-token/rotate       RotateRequest -> RotateResponse
func Handler(src Source) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/catalog", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, src.Catalog.Snapshot())
	})
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Nodes(src.Catalog.Snapshot(), src.members()))
	})
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Services(src.Catalog.Snapshot()))
	})
	mux.HandleFunc("GET /v1/services/{name}/tasks", func(w http.ResponseWriter, r *http.Request) {
		tasks, ok := Tasks(src.Catalog.Snapshot(), r.PathValue("name"))
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("no service %q", r.PathValue("name")))
			return
		}
		writeJSON(w, http.StatusOK, tasks)
	})
	mux.HandleFunc("GET /v1/networks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Networks(src.Catalog.Snapshot()))
	})
	mux.HandleFunc("POST /v1/join-token/rotate", func(w http.ResponseWriter, r *http.Request) {
		rotate(w, r, src)
	})
	return mux
}

func rotate(w http.ResponseWriter, r *http.Request, src Source) {
	if src.Rotate == nil {
		writeError(w, http.StatusConflict, errors.New("this node runs without a cluster"))
		return
	}
	var req RotateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("reading request: %w", err))
		return
	}
	cur, err := cluster.ParseToken(req.Current)
	if err == nil {
		var next cluster.Token
		next, err = cluster.ParseToken(req.Next)
		if err == nil {
			var d time.Duration
			if d, err = src.Rotate(cur, next); err == nil {
				writeJSON(w, http.StatusOK, RotateResponse{DurationSeconds: d.Seconds()})
				return
			}
		}
	}
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, cluster.ErrCurrentToken):
		status = http.StatusForbidden
	case errors.Is(err, cluster.ErrRotating):
		status = http.StatusConflict
	}
	writeError(w, status, err)
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, apiError{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) // the client went away if this fails; nothing to do
}

// Listen opens the API's listener at addr: host:port, or unix:PATH for a
// unix socket (a stale socket file is replaced). A host:port off loopback
// is refused with ErrNotLoopback unless insecure is set.
func Listen(addr string, insecure bool) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		// replace a socket left by an earlier run, never another file
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("replacing api socket %s: %w", path, err)
			}
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("api listener: %w", err)
		}
		return ln, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("api address %q: %w", addr, err)
	}
	if !insecure && !isLoopback(host) {
		return nil, fmt.Errorf("%q: %w", addr, ErrNotLoopback)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api listener: %w", err)
	}
	return ln, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server is a running API.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Serve serves src on ln until Close. It does not block.
func Serve(ln net.Listener, src Source, logger *slog.Logger) *Server {
	s := &Server{
		srv: &http.Server{
			Handler:           Handler(src),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("api stopped", "listener", ln.Addr().String(), "err", err)
		}
	}()
	return s
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, giving open requests a second to finish. It
// blocks until the server has stopped and may be called twice.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	if err != nil {
		return fmt.Errorf("stopping api: %w", err)
	}
	return nil
}
