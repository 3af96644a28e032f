// Command stock-poller publishes each tenant's Hiper stock levels as events
// when they change. Configuration: README, "Configuration".
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hipersync/hipersync/services/stock-poller/stocksync"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGTERM while it still waits for NATS is a clean stop, not a failure.
	if err := stocksync.Main(ctx, os.Getenv, os.Stdout); err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		fmt.Fprintln(os.Stderr, "stock-poller:", err)
		os.Exit(1)
	}
}
