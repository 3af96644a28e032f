// Command catalog-poller publishes each tenant's Hiper catalog as events:
// products, prices, held mass changes. Configuration: README, "Configuration".
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hipersync/hipersync/services/catalog-poller/catalogsync"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGTERM while it still waits for NATS is a clean stop, not a failure.
	if err := catalogsync.Main(ctx, os.Getenv, os.Stdout); err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		fmt.Fprintln(os.Stderr, "catalog-poller:", err)
		os.Exit(1)
	}
}
