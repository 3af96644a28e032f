// Command hiper-sim serves the Hiper API simulator (package hipersim) over
// HTTP: the API under /api/v1 and its control API under /_sim. It is
// configured by HIPER_SIM_* variables (see hipersim.ConfigFromEnv) and
// HIPER_SIM_ADDR, the listen address.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hipersync/hipersync/pkg/hipersim"
)

// envAddr is where hiper-sim listens; the default keeps it off the network.
const (
	envAddr     = "HIPER_SIM_ADDR"
	defaultAddr = "127.0.0.1:8089"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hiper-sim:", err)
		stop()
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down gracefully.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	log := slog.New(slog.NewJSONHandler(stdout, nil))
	cfg, err := hipersim.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	addr := strings.TrimSpace(getenv(envAddr))
	if addr == "" {
		addr = defaultAddr
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("read configuration: %s: %q is not host:port", envAddr, addr)
	}
	sim, err := hipersim.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (%s): %w", addr, envAddr, err)
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}

	root := "http://" + ln.Addr().String()
	attrs := []any{"addr", ln.Addr().String(), "api", root + hipersim.APIPrefix, "control", root + "/_sim"}
	if len(cfg.Keys) == 0 {
		// The demo key is public; printing it is how a user of the demo finds it.
		attrs = append(attrs, "demo_key", hipersim.DemoKey)
	}
	log.Info("hiper-sim listening", attrs...)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("hiper-sim stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("hiper-sim stopped")
	return nil
}
