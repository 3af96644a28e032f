package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Check reports whether a dependency is usable; a nil error means ready. A
// check returning a *DegradedError reports the degradation without making
// the process unready: it still serves, less well.
type Check func(ctx context.Context) error

// DegradedError is a readiness problem that does not stop the process from
// serving (e.g. token-broker without Redis still hands out tokens).
type DegradedError struct{ Err error }

func (e *DegradedError) Error() string { return "degraded: " + e.Err.Error() }
func (e *DegradedError) Unwrap() error { return e.Err }

// Health is a process's /healthz, /readyz and /metrics endpoints. Liveness
// only says the process serves HTTP; readiness runs every registered check.
type Health struct {
	Registry *prometheus.Registry

	mu       sync.Mutex
	checks   map[string]Check
	included []prometheus.Gatherer
}

// NewHealth returns a Health with a fresh registry holding the Go runtime
// and process collectors.
func NewHealth() *Health {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Health{Registry: reg, checks: map[string]Check{}}
}

// AddCheck registers a readiness check under name.
func (h *Health) AddCheck(name string, c Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = c
}

// Include makes h report what child reports, for several services in one
// process (the dev run): child's checks under "service/name", and child's
// metrics with a service label, so two services' identical series stay apart.
func (h *Health) Include(service string, child *Health) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.included = append(h.included, labelled{service: service, g: child.Registry})
	child.mu.Lock()
	defer child.mu.Unlock()
	for name, c := range child.checks {
		h.checks[service+"/"+name] = c
	}
	// Checks the child adds later are not seen; services add theirs at start.
}

// labelled adds service="<service>" to every metric g gathers.
type labelled struct {
	service string
	g       prometheus.Gatherer
}

func (l labelled) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := l.g.Gather()
	name, value := "service", l.service
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			m.Label = append(m.Label, &dto.LabelPair{Name: &name, Value: &value})
		}
	}
	return mfs, err
}

// Handler serves /healthz, /readyz and /metrics.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", h.serveReady)
	mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		gatherers := append(prometheus.Gatherers{h.Registry}, h.included...)
		h.mu.Unlock()
		promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	}))
	return mux
}

func (h *Health) serveReady(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	names := make([]string, 0, len(h.checks))
	for name := range h.checks {
		names = append(names, name)
	}
	checks := make(map[string]Check, len(h.checks))
	for k, v := range h.checks {
		checks[k] = v
	}
	h.mu.Unlock()
	sort.Strings(names)

	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, code := map[string]string{}, http.StatusOK
	for _, name := range names {
		if err := checks[name](ctx); err != nil {
			status[name] = err.Error()
			var degraded *DegradedError
			if !errors.As(err, &degraded) {
				code = http.StatusServiceUnavailable
			}
			continue
		}
		status[name] = "ok"
	}
	writeJSON(w, code, status)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Serve runs the health endpoints on addr until ctx is done, then shuts the
// server down. It returns once the listener is bound (the server runs in the
// background); the returned func waits for the shutdown to finish.
func (h *Health) Serve(ctx context.Context, addr string, log *slog.Logger) (wait func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for health on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	log.Info("health and metrics listening", "addr", ln.Addr().String())
	return func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return errors.Join(srv.Shutdown(sctx), <-done)
	}, nil
}
