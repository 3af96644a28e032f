// Command hipersync is the operator CLI (README, "Operator CLI").
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hipersync/hipersync/cmd/hipersync/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}
