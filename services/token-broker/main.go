// Command token-broker is the only hipersync process that holds Hiper
// security keys. It hands out Hiper tokens over gRPC and owns the tenant
// registry. Configuration: README, "Configuration".
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hipersync/hipersync/services/token-broker/broker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGTERM while it still waits for NATS is a clean stop, not a failure.
	if err := broker.Main(ctx, os.Getenv, os.Stdout); err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		fmt.Fprintln(os.Stderr, "token-broker:", err)
		os.Exit(1)
	}
}
