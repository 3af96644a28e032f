// Command invoice-watcher follows every order Hiper accepted until it is
// final and publishes its invoice, shipping, failure and the merchant's
// cancellation back to the store. Configuration: README, "Configuration"
// and "Invoices, shipping, cancellations".
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGTERM while it still waits for NATS is a clean stop, not a failure.
	if err := watcher.Main(ctx, os.Getenv, os.Stdout); err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		fmt.Fprintln(os.Stderr, "invoice-watcher:", err)
		os.Exit(1)
	}
}
