package watcher

import (
	"context"
	"io"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/service"
)

// Main runs the invoice-watcher until ctx is done: it follows orders and
// serves health and metrics on HTTP_ADDR, then stops in the reverse order of
// intake (drain the consumers and the poll queue, then the connection).
func Main(ctx context.Context, getenv config.Env, logOut io.Writer) error {
	return service.MainWith(ctx, "invoice-watcher", getenv, logOut, loadConfig,
		func(ctx context.Context, d service.Deps, c Config) (*Watcher, error) {
			return Start(ctx, Deps{Deps: d, Config: c})
		})
}
