// Command order-forwarder creates and cancels the store's orders in Hiper,
// each exactly once, and publishes the outcome. Configuration: README,
// "Configuration" and "Orders".
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hipersync/hipersync/services/order-forwarder/forwarder"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGTERM while it still waits for NATS is a clean stop, not a failure.
	if err := forwarder.Main(ctx, os.Getenv, os.Stdout); err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		fmt.Fprintln(os.Stderr, "order-forwarder:", err)
		os.Exit(1)
	}
}
