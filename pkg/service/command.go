package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hipersync/hipersync/pkg/config"
)

// Command is a service binary's main: it runs main until SIGINT or SIGTERM,
// with the process's environment and stdout for logs, and exits 1 with the
// error on stderr when main fails. SIGTERM while the service still waits
// for NATS is a clean stop, not a failure.
func Command(name string, main func(ctx context.Context, getenv config.Env, logOut io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := main(ctx, os.Getenv, os.Stdout)
	failed := err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled))
	stop()
	if failed {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
